package asm

import (
	"encoding/binary"
	"math/rand"
	"slices"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// roundTrip checks assemble(disassemble(prog)) == prog.
func roundTrip(t *testing.T, prog []cbpf.Instruction, opt Options) {
	t.Helper()
	text := Disassemble(prog, opt)
	got, err := Assemble([]byte(text), "rt.s")
	if err != nil {
		t.Fatalf("disassembly of %v does not assemble: %v\n%s", prog, err, text)
	}
	if !slices.Equal(got, prog) {
		t.Fatalf("round trip changed the program:\nin  %v\nout %v\ntext:\n%s", prog, got, text)
	}
}

// allOptions returns the disassembler options worth covering.
func allOptions() []Options {
	var opts []Options
	for _, bo := range []binary.ByteOrder{nil, binary.BigEndian} {
		for _, v := range []abi.View{abi.ViewCommon, abi.ViewSocket, abi.ViewOpen, abi.ViewConnect} {
			for _, num := range []bool{false, true} {
				opts = append(opts, Options{ByteOrder: bo, View: v, Numeric: num})
			}
		}
	}
	return opts
}

// knownCodes lists the codes with a mnemonic and some without.
func knownCodes() []uint16 {
	return []uint16{
		0x00, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x60, 0x80, 0x01, 0x61, 0x81, 0xb1, 0x02, 0x03,
		0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c,
		0x84, 0x94, 0x9c, 0xa4, 0xac, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d,
		0x06, 0x0e, 0x16, 0x07, 0x87,
	}
}

// randomProgram makes a program that mixes well-formed instructions, stray
// fields and random codes, with jump offsets inside and outside it.
func randomProgram(r *rand.Rand, n int) []cbpf.Instruction {
	codes := knownCodes()
	prog := make([]cbpf.Instruction, n)
	for i := range prog {
		var in cbpf.Instruction
		switch r.Intn(10) {
		case 0:
			in = cbpf.Instruction{Op: uint16(r.Uint32()), Jt: uint8(r.Uint32()), Jf: uint8(r.Uint32()), K: r.Uint32()}
		case 1, 2:
			in = cbpf.Instruction{Op: codes[r.Intn(len(codes))], Jt: uint8(r.Intn(4)), Jf: uint8(r.Intn(4)), K: uint32(r.Intn(4))}
		default:
			in = cbpf.Instruction{Op: codes[r.Intn(len(codes))]}
			if in.IsConditionalJump() {
				in.Jt, in.Jf = uint8(r.Intn(n+2)), uint8(r.Intn(n+2))
			}
			switch r.Intn(4) {
			case 0:
				in.K = uint32(r.Intn(10)) * 4
			case 1:
				in.K = r.Uint32()
			case 2:
				in.K = uint32(r.Intn(n + 2))
			}
		}
		prog[i] = in
	}
	return prog
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	opts := allOptions()
	for iter := 0; iter < 3000; iter++ {
		prog := randomProgram(r, r.Intn(30))
		roundTrip(t, prog, opts[iter%len(opts)])
	}
}

// TestRoundTripEveryCode round-trips every 16-bit code with zero fields,
// with jump fields, and with all fields set.
func TestRoundTripEveryCode(t *testing.T) {
	for code := 0; code <= 0xffff; code++ {
		if code > 0x1ff && code%97 != 0 {
			continue // high codes are all invalid alike; sample them
		}
		for _, in := range []cbpf.Instruction{
			{Op: uint16(code)},
			{Op: uint16(code), Jt: 1},
			{Op: uint16(code), Jf: 2, K: 40},
			{Op: uint16(code), Jt: 255, Jf: 255, K: 0xffffffff},
		} {
			roundTrip(t, []cbpf.Instruction{in, cbpf.Ret(0), cbpf.Ret(1), cbpf.Ret(2)}, Options{View: abi.ViewOpen})
		}
	}
}

// TestRoundTripFormats checks every output format reads back, through
// Unmarshal and, for the text formats, through ParseAny's detection.
func TestRoundTripFormats(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for iter := 0; iter < 300; iter++ {
		prog := randomProgram(r, 1+r.Intn(20))
		formatsRoundTrip(t, prog)
	}
	formatsRoundTrip(t, []cbpf.Instruction{})
}

func formatsRoundTrip(t *testing.T, prog []cbpf.Instruction) {
	t.Helper()
	for _, f := range Formats() {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			data, err := Marshal(prog, f, bo)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(data, f, bo)
			if err != nil {
				t.Fatalf("%s: %v\n%s", f, err, data)
			}
			if !slices.Equal(got, prog) {
				t.Fatalf("%s round trip:\nin  %v\nout %v", f, prog, got)
			}
		}
		data, _ := Marshal(prog, f, nil)
		if len(data) == 0 || f == FormatRaw && Detect(data) != FormatRaw {
			continue // raw bytes without a NUL byte are not detectable
		}
		if d := Detect(data); d != f {
			t.Fatalf("Detect(%s output) = %s\n%s", f, d, data)
		}
		got, err := ParseAny(data)
		if err != nil || !slices.Equal(got, prog) {
			t.Fatalf("ParseAny(%s): %v %v", f, got, err)
		}
	}
}
