package asm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/cbpf"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGolden assembles each testdata/*.s and compares its disassembly, its
// C form and the checker's verdict with testdata/*.golden. Run
// "go test ./asm -update" to rewrite the golden files after an intended
// change, and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.s")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 testdata/*.s files, found %v (%v)", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			o, err := AssembleFile(src, file)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.WriteString("; disassembly\n")
			text := Disassemble(o.Insns, Options{ByteOrder: o.ByteOrder, View: o.View})
			b.WriteString(text)
			b.WriteString("\n; C\n")
			c, _ := Marshal(o.Insns, FormatC, o.ByteOrder)
			b.Write(c)
			b.WriteString("\n; checker: ")
			if _, err := cbpf.Check(o.Insns); err != nil {
				b.WriteString("rejected: " + err.Error() + "\n")
			} else {
				b.WriteString("accepted\n")
			}
			golden := strings.TrimSuffix(file, ".s") + ".golden"
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s; got:\n%s", file, golden, b.Bytes())
			}
			roundTrip(t, o.Insns, Options{ByteOrder: o.ByteOrder, View: o.View})
		})
	}
}
