package asm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// seedSources are assembly sources for the fuzzers' corpora.
func seedSources() []string {
	s := []string{
		"ret #1",
		".view socket\nld [socket.family]\njeq #AF_INET, ok, no\nok: ret #1\nno: ret #0\n",
		".endian big\n.view open\nld [open.flags.lo]\njset #O_CREAT|O_TRUNC, +1\nret #1\nret #0",
		".view connect\nld [connect.port]\njeq #port(80), +0, +1\nld [connect.addr]\njne #ip4(10.0.0.1), end\nend:",
		"ld M[3]\nst M[15]\nldx len\nadd x\nneg\ntax\ntxa\nja +0\nret a ; c",
		".insn 0x28, 1, 2, 0x10\n.insn 0xffff, 255, 255, 0xffffffff",
		"jeq #1, far\n" + fill(300) + "far: ret #1",
		"a: b: jne x, c\nc:",
	}
	for _, c := range mnemonicCases {
		s = append(s, c.src)
	}
	return s
}

// FuzzAssemble: Assemble never panics, and whatever it accepts
// disassembles and reassembles to the same program.
func FuzzAssemble(f *testing.F) {
	for _, s := range seedSources() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		o, err := AssembleFile(src, "fuzz.s")
		if err != nil {
			var list ErrorList
			if !asErrorList(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			return
		}
		if len(o.Pos) != len(o.Insns) {
			t.Fatalf("%d positions for %d instructions", len(o.Pos), len(o.Insns))
		}
		roundTrip(t, o.Insns, Options{ByteOrder: o.ByteOrder, View: o.View})
		roundTrip(t, o.Insns, Options{Numeric: true})
	})
}

func asErrorList(err error, list *ErrorList) bool {
	l, ok := err.(ErrorList)
	*list = l
	return ok
}

// FuzzParseAny: ParseAny never panics, and what it reads writes back in
// every format and reads back the same.
func FuzzParseAny(f *testing.F) {
	for _, s := range seedSources() {
		f.Add([]byte(s))
	}
	prog := []cbpf.Instruction{cbpf.LoadAbs(16), cbpf.JumpIf(cbpf.JmpJEQ, 2, 0, 1), cbpf.Ret(1), cbpf.Ret(0)}
	for _, fm := range Formats() {
		data, _ := Marshal(prog, fm, nil)
		f.Add(data)
	}
	f.Add([]byte("{0x06, 0, 0, 1}"))
	f.Add([]byte("struct sock_filter f[] = {BPF_STMT(BPF_LD|BPF_W|BPF_ABS, offsetof(struct io_uring_bpf_ctx, open.flags) + 4), BPF_JUMP(BPF_JMP+BPF_JSET+BPF_K, (1|2), 0, 1)};"))
	f.Add([]byte("struct sock_filter f[] = { { .code = 6, .k = 1 }, };"))
	f.Add([]byte("var p = []cbpf.Instruction{cbpf.Instruction{Op: 6, K: 1}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		prog, err := ParseAny(data)
		if err != nil || len(prog) > 1000 {
			return
		}
		formatsRoundTrip(t, prog)
	})
}

// FuzzDecode: the raw reader never panics and re-encodes to its input.
func FuzzDecode(f *testing.F) {
	f.Add(cbpf.Encode([]cbpf.Instruction{cbpf.LoadAbs(16), cbpf.Ret(1)}, binary.LittleEndian))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			prog, err := Unmarshal(data, FormatRaw, bo)
			if err != nil {
				if len(data)%8 == 0 {
					t.Fatalf("%d bytes rejected: %v", len(data), err)
				}
				continue
			}
			out, err := Marshal(prog, FormatRaw, bo)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("raw round trip changed %x to %x (%v)", data, out, err)
			}
		}
	})
}

// FuzzDisasmRoundTrip: every program, as raw bytes, disassembles to text
// that assembles back to it, whatever the options.
func FuzzDisasmRoundTrip(f *testing.F) {
	r := []cbpf.Instruction{cbpf.LoadAbs(20), cbpf.ALUK(cbpf.AluAnd, 0xf), cbpf.JumpIf(cbpf.JmpJSET, 0x800, 1, 0), cbpf.Ret(1), cbpf.Ret(0)}
	f.Add(cbpf.Encode(r, binary.LittleEndian), uint8(0))
	f.Add(cbpf.Encode(r, binary.LittleEndian), uint8(0x0f))
	f.Add([]byte{0x28, 0, 1, 2, 3, 4, 5, 6}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, o uint8) {
		prog, _ := cbpf.Decode(data[:len(data)&^7], binary.LittleEndian)
		opt := Options{View: abi.View(o & 3), Numeric: o&4 != 0}
		if o&16 != 0 {
			opt.View = abi.View(o >> 5) // unknown views print as common
		}
		if o&8 != 0 {
			opt.ByteOrder = binary.BigEndian
		}
		roundTrip(t, prog, opt)
		lines := Lines(prog, opt)
		if len(lines) != len(prog) {
			t.Fatalf("%d lines for %d instructions", len(lines), len(prog))
		}
	})
}
