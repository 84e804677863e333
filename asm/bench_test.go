package asm

import (
	"os"
	"testing"
)

func benchSource(b *testing.B, name string) []byte {
	src, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkAssemble assembles the 317-line long-jump program.
func BenchmarkAssemble(b *testing.B) {
	src := benchSource(b, "longjump.s")
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Assemble(src, "longjump.s"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDisassemble disassembles the same program with names.
func BenchmarkDisassemble(b *testing.B) {
	o, err := AssembleFile(benchSource(b, "longjump.s"), "longjump.s")
	if err != nil {
		b.Fatal(err)
	}
	opt := Options{View: o.View}
	b.ReportMetric(float64(len(o.Insns)), "insns")
	for b.Loop() {
		_ = Disassemble(o.Insns, opt)
	}
}
