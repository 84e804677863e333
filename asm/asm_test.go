package asm

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// mnemonicCases pairs each mnemonic form with its instruction and the text
// the disassembler prints for it (when different from src). Jumps use
// numeric offsets, which a one-instruction program prints as +N.
var mnemonicCases = []struct {
	src string
	in  cbpf.Instruction
	dis string
}{
	{"ld #7", cbpf.LoadImm(7), ""},
	{"ld #0x12345678", cbpf.LoadImm(0x12345678), ""},
	{"ld [16]", cbpf.LoadAbs(16), ""},
	{"ld [0x10]", cbpf.LoadAbs(16), "ld [16]"},
	{"ld [3]", cbpf.LoadAbs(3), ""},
	{"ld [user_data.lo]", cbpf.LoadAbs(0), ""},
	{"ld [user_data.hi]", cbpf.LoadAbs(4), ""},
	{"ld [op_flags_pdu]", cbpf.LoadAbs(8), ""},
	{"ld [pad]", cbpf.LoadAbs(12), ""},
	{"ld M[3]", cbpf.LoadMem(3), ""},
	{"ld M[99]", cbpf.LoadMem(99), ""},
	{"ld len", cbpf.LoadLen(), ""},
	{"ld #len", cbpf.LoadLen(), "ld len"},
	{"LD #7", cbpf.LoadImm(7), "ld #7"},
	{"ldx #7", cbpf.LoadXImm(7), ""},
	{"ldx M[15]", cbpf.LoadXMem(15), ""},
	{"ldx len", cbpf.LoadXLen(), ""},
	{"st M[0]", cbpf.Store(0), ""},
	{"stx M[1]", cbpf.StoreX(1), ""},
	{"add #1", cbpf.ALUK(cbpf.AluAdd, 1), ""},
	{"add x", cbpf.ALUX(cbpf.AluAdd), ""},
	{"sub #1", cbpf.ALUK(cbpf.AluSub, 1), ""},
	{"sub x", cbpf.ALUX(cbpf.AluSub), ""},
	{"mul #3", cbpf.ALUK(cbpf.AluMul, 3), ""},
	{"mul x", cbpf.ALUX(cbpf.AluMul), ""},
	{"div #3", cbpf.ALUK(cbpf.AluDiv, 3), ""},
	{"div x", cbpf.ALUX(cbpf.AluDiv), ""},
	{"mod #3", cbpf.ALUK(cbpf.AluMod, 3), ""},
	{"mod x", cbpf.ALUX(cbpf.AluMod), ""},
	{"and #0xff", cbpf.ALUK(cbpf.AluAnd, 0xff), ""},
	{"and #3", cbpf.ALUK(cbpf.AluAnd, 3), ""},
	{"and x", cbpf.ALUX(cbpf.AluAnd), ""},
	{"or #0x100", cbpf.ALUK(cbpf.AluOr, 0x100), ""},
	{"or x", cbpf.ALUX(cbpf.AluOr), ""},
	{"xor #0xffffffff", cbpf.ALUK(cbpf.AluXor, 0xffffffff), ""},
	{"xor x", cbpf.ALUX(cbpf.AluXor), ""},
	{"lsh #2", cbpf.ALUK(cbpf.AluLsh, 2), ""},
	{"lsh x", cbpf.ALUX(cbpf.AluLsh), ""},
	{"rsh #31", cbpf.ALUK(cbpf.AluRsh, 31), ""},
	{"rsh x", cbpf.ALUX(cbpf.AluRsh), ""},
	{"neg", cbpf.Neg(), ""},
	{"tax", cbpf.TAX(), ""},
	{"txa", cbpf.TXA(), ""},
	{"ja +3", cbpf.Jump(3), ""},
	{"jmp +3", cbpf.Jump(3), "ja +3"},
	{"ja +4294967295", cbpf.Jump(0xffffffff), ""},
	{"jeq #1, +2", cbpf.JumpIf(cbpf.JmpJEQ, 1, 2, 0), ""},
	{"jeq #1, +2, +3", cbpf.JumpIf(cbpf.JmpJEQ, 1, 2, 3), ""},
	{"jeq x, +2, +3", cbpf.JumpIfX(cbpf.JmpJEQ, 2, 3), ""},
	{"jne #1, +2", cbpf.JumpIf(cbpf.JmpJEQ, 1, 0, 2), ""},
	{"jne #1, +2, +3", cbpf.JumpIf(cbpf.JmpJEQ, 1, 3, 2), "jeq #1, +3, +2"},
	{"jne x, +2", cbpf.JumpIfX(cbpf.JmpJEQ, 0, 2), ""},
	{"jgt #1, +2", cbpf.JumpIf(cbpf.JmpJGT, 1, 2, 0), ""},
	{"jgt x, +255, +1", cbpf.JumpIfX(cbpf.JmpJGT, 255, 1), ""},
	{"jle #1, +2", cbpf.JumpIf(cbpf.JmpJGT, 1, 0, 2), ""},
	{"jge #1, +2", cbpf.JumpIf(cbpf.JmpJGE, 1, 2, 0), ""},
	{"jge x, +2", cbpf.JumpIfX(cbpf.JmpJGE, 2, 0), ""},
	{"jlt #1, +2", cbpf.JumpIf(cbpf.JmpJGE, 1, 0, 2), ""},
	{"jlt x, +2", cbpf.JumpIfX(cbpf.JmpJGE, 0, 2), ""},
	{"jset #0x10, +2", cbpf.JumpIf(cbpf.JmpJSET, 0x10, 2, 0), ""},
	{"jset #4, +0, +2", cbpf.JumpIf(cbpf.JmpJSET, 4, 0, 2), ""},
	{"jset x, +1, +2", cbpf.JumpIfX(cbpf.JmpJSET, 1, 2), ""},
	{"ret #0", cbpf.Ret(0), ""},
	{"ret #0xffffffff", cbpf.Ret(0xffffffff), ""},
	{"ret a", cbpf.RetAcc(), ""},
	{"RET A", cbpf.RetAcc(), "ret a"},
	// Codes without a mnemonic, and mnemonics with stray fields.
	{".insn 0x28, 0, 0, 0x10", cbpf.Instruction{Op: 0x28, K: 16}, ""},
	{".insn 0x30, 0, 0, 0x10", cbpf.Instruction{Op: 0x30, K: 16}, ""},
	{".insn 0x40, 0, 0, 0", cbpf.Instruction{Op: 0x40}, ""},
	{".insn 0xb1, 0, 0, 0xe", cbpf.Instruction{Op: 0xb1, K: 14}, ""},
	{".insn 0x0e, 0, 0, 0", cbpf.Instruction{Op: 0x0e}, ""},
	{".insn 0x06, 1, 0, 0", cbpf.Instruction{Op: 0x06, Jt: 1}, ""},
	{".insn 0x05, 0, 1, 0x2", cbpf.Instruction{Op: 0x05, Jf: 1, K: 2}, ""},
	{".insn 0x84, 0, 0, 0x1", cbpf.Instruction{Op: 0x84, K: 1}, ""},
	{".insn 0x1d, 1, 0, 0x7", cbpf.Instruction{Op: 0x1d, Jt: 1, K: 7}, ""},
	{".insn 0x0c, 0, 0, 0x1", cbpf.Instruction{Op: 0x0c, K: 1}, ""},
	{".insn 0x16, 0, 0, 0x1", cbpf.Instruction{Op: 0x16, K: 1}, ""},
	{".insn 0x87, 0, 0, 0x5", cbpf.Instruction{Op: 0x87, K: 5}, ""},
	{".insn 0x08, 0, 0, 0", cbpf.Instruction{Op: 0x08}, ""},
	{".insn 0x120, 0, 0, 0", cbpf.Instruction{Op: 0x120}, ""},
	{".insn 0xffff, 255, 255, 0xffffffff", cbpf.Instruction{Op: 0xffff, Jt: 255, Jf: 255, K: 0xffffffff}, ""},
	{".insn 0xc4, 0, 0, 0", cbpf.Instruction{Op: 0xc4}, ""},
	{".insn 0x55, 0, 0, 0x1", cbpf.Instruction{Op: 0x55, K: 1}, ""},
}

func TestMnemonics(t *testing.T) {
	for _, c := range mnemonicCases {
		t.Run(c.src, func(t *testing.T) {
			got, err := Assemble([]byte(c.src+"\n"), "t.s")
			if err != nil {
				t.Fatalf("Assemble: %v", err)
			}
			if want := []cbpf.Instruction{c.in}; !slices.Equal(got, want) {
				t.Fatalf("Assemble(%q) = %v, want %v", c.src, got, want)
			}
			want := c.dis
			if want == "" {
				want = c.src
			}
			if got := Lines([]cbpf.Instruction{c.in}, Options{})[0]; got != want {
				t.Errorf("Lines(%v) = %q, want %q", c.in, got, want)
			}
		})
	}
}

func TestDisassembleLabels(t *testing.T) {
	src := `	ld [socket.family]
	jeq #AF_INET, ok
	jeq #AF_INET6, ok, deny
ok:	ld [socket.type]
	jset #SOCK_NONBLOCK, deny
	jne #SOCK_STREAM, deny
	ja allow
deny:	ret #0
allow:	ret #1
`
	prog, err := Assemble([]byte(src), "t.s")
	if err != nil {
		t.Fatal(err)
	}
	want := []cbpf.Instruction{
		cbpf.LoadAbs(16),
		cbpf.JumpIf(cbpf.JmpJEQ, 2, 1, 0),
		cbpf.JumpIf(cbpf.JmpJEQ, 10, 0, 4),
		cbpf.LoadAbs(20),
		cbpf.JumpIf(cbpf.JmpJSET, 0x800, 2, 0),
		cbpf.JumpIf(cbpf.JmpJEQ, 1, 0, 1),
		cbpf.Jump(1),
		cbpf.Ret(0),
		cbpf.Ret(1),
	}
	if !slices.Equal(prog, want) {
		t.Fatalf("got\n%v\nwant\n%v", prog, want)
	}
	got := Disassemble(prog, Options{View: abi.ViewSocket})
	wantText := `.view socket
	ld [socket.family]
	jeq #AF_INET, L3
	jne #AF_INET6, L7
L3:
	ld [socket.type]
	jset #SOCK_NONBLOCK, L7
	jne #SOCK_STREAM, L7
	ja L8
L7:
	ret #0
L8:
	ret #1
`
	if got != wantText {
		t.Errorf("Disassemble =\n%s\nwant\n%s", got, wantText)
	}
	numeric := Disassemble(prog, Options{Numeric: true})
	if !strings.Contains(numeric, "\tld [16]\n\tjeq #2, L3\n") {
		t.Errorf("numeric disassembly without view:\n%s", numeric)
	}
}

// TestWordNames checks every context word name against its offset, for
// both byte orders.
func TestWordNames(t *testing.T) {
	cases := []struct {
		name   string
		view   abi.View
		little uint32
		big    uint32
	}{
		{"user_data.lo", abi.ViewCommon, 0, 4},
		{"user_data.hi", abi.ViewCommon, 4, 0},
		{"op_flags_pdu", abi.ViewCommon, 8, 8},
		{"pad", abi.ViewCommon, 12, 12},
		{"socket.family", abi.ViewSocket, 16, 16},
		{"socket.type", abi.ViewSocket, 20, 20},
		{"socket.protocol", abi.ViewSocket, 24, 24},
		{"open.flags.lo", abi.ViewOpen, 16, 20},
		{"open.flags.hi", abi.ViewOpen, 20, 16},
		{"open.mode.lo", abi.ViewOpen, 24, 28},
		{"open.mode.hi", abi.ViewOpen, 28, 24},
		{"open.resolve.lo", abi.ViewOpen, 32, 36},
		{"open.resolve.hi", abi.ViewOpen, 36, 32},
		{"connect.family", abi.ViewConnect, 16, 16},
		{"connect.port", abi.ViewConnect, 20, 20},
		{"connect.addr", abi.ViewConnect, 24, 24},
		{"connect.addr.1", abi.ViewConnect, 28, 28},
		{"connect.addr.2", abi.ViewConnect, 32, 32},
		{"connect.addr.3", abi.ViewConnect, 36, 36},
	}
	for _, c := range cases {
		for _, e := range []struct {
			dir  string
			bo   binary.ByteOrder
			want uint32
		}{{"little", binary.LittleEndian, c.little}, {"big", binary.BigEndian, c.big}} {
			src := ".endian " + e.dir + "\n.view " + c.view.String() + "\n\tld [" + c.name + "]\n"
			prog, err := Assemble([]byte(src), "w.s")
			if err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
			if prog[0] != cbpf.LoadAbs(e.want) {
				t.Errorf("%s %s: got %v, want offset %d", e.dir, c.name, prog[0], e.want)
			}
			if got := Lines(prog, Options{ByteOrder: e.bo, View: c.view})[0]; got != "ld ["+c.name+"]" {
				t.Errorf("%s %s: disassembled as %q", e.dir, c.name, got)
			}
		}
	}
	// connect.addr.0 is accepted as another name of connect.addr.
	prog, err := Assemble([]byte("ld [connect.addr.0]"), "w.s")
	if err != nil || prog[0] != cbpf.LoadAbs(24) {
		t.Errorf("connect.addr.0: %v %v", prog, err)
	}
}

// TestConstantNames checks that the disassembler names constants compared
// with named fields, and that the names assemble back.
func TestConstantNames(t *testing.T) {
	cases := []struct {
		view abi.View
		bo   binary.ByteOrder
		src  string // both the input and the expected disassembly
	}{
		{abi.ViewSocket, nil, "ld [socket.family]\njeq #AF_INET6, +1"},
		{abi.ViewSocket, nil, "ld [socket.family]\njeq #AF_UNIX, +1"},
		{abi.ViewSocket, nil, "ld [socket.family]\njeq #99, +1"},
		{abi.ViewSocket, nil, "ld [socket.type]\njeq #SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, +1"},
		{abi.ViewSocket, nil, "ld [socket.type]\njeq #SOCK_DGRAM, +1"},
		{abi.ViewSocket, nil, "ld [socket.type]\njeq #15, +1"},
		{abi.ViewSocket, nil, "ld [socket.type]\nand #0xf\njeq #SOCK_RAW, +1"},
		{abi.ViewSocket, nil, "ld [socket.protocol]\njeq #IPPROTO_TCP, +1"},
		{abi.ViewOpen, nil, "ld [open.flags.lo]\njset #O_CREAT|O_TRUNC, +1"},
		{abi.ViewOpen, nil, "ld [open.flags.lo]\nand #O_ACCMODE\njeq #O_RDWR, +1"},
		{abi.ViewOpen, nil, "ld [open.flags.lo]\njeq #O_WRONLY|O_CREAT|0x80000000, +1"},
		{abi.ViewOpen, binary.BigEndian, "ld [open.flags.lo]\njset #O_TMPFILE, +1"},
		{abi.ViewOpen, nil, "ld [open.mode.lo]\njset #S_IWOTH|S_IWGRP, +1"},
		{abi.ViewOpen, nil, "ld [open.resolve.lo]\njset #RESOLVE_BENEATH, +1"},
		{abi.ViewConnect, nil, "ld [connect.port]\njeq #port(80), +1"},
		{abi.ViewConnect, binary.BigEndian, "ld [connect.port]\njeq #port(443), +1"},
		{abi.ViewConnect, nil, "ld [connect.port]\njeq #0x10000, +1"},
		{abi.ViewConnect, nil, "ld [connect.addr]\njeq #ip4(127.0.0.1), +1"},
		{abi.ViewConnect, binary.BigEndian, "ld [connect.addr]\njeq #ip4(10.1.2.3), +1"},
		{abi.ViewConnect, nil, "ld [connect.family]\njeq #AF_INET, +1"},
		{abi.ViewCommon, nil, "ld [op_flags_pdu]\nand #0xff\njeq #IORING_OP_OPENAT2, +1"},
		{abi.ViewCommon, nil, "ld [op_flags_pdu]\nand #0xff\njeq #200, +1"},
		// Where paths join, A is known only if every path agrees.
		{abi.ViewSocket, nil, "ld [socket.family]\nja L2\nL2:\njeq #AF_INET, +1"},
		{abi.ViewSocket, nil, "ld [socket.family]\njeq #AF_INET, L4\nld [socket.protocol]\njeq #IPPROTO_TCP, L4\nL4:\njeq #6, +1"},
		{abi.ViewSocket, nil, "ld [socket.family]\njeq #AF_INET, L3\ntax\nL3:\njeq #AF_INET6, +1"},
		{abi.ViewSocket, nil, ".insn 0x05, 1, 0, 0\nld [socket.family]\njeq #2, +1"},
	}
	for _, c := range cases {
		prog, err := Assemble([]byte(dirs(c.view, c.bo)+c.src), "c.s")
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got := Disassemble(prog, Options{View: c.view, ByteOrder: c.bo})
		want := dirs(c.view, c.bo)
		for _, l := range strings.Split(c.src, "\n") {
			if strings.HasSuffix(l, ":") {
				want += l + "\n"
			} else {
				want += "\t" + l + "\n"
			}
		}
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	}
}

func dirs(v abi.View, bo binary.ByteOrder) string {
	s := ""
	if isBig(bo) {
		s += ".endian big\n"
	}
	if v != abi.ViewCommon {
		s += ".view " + v.String() + "\n"
	}
	return s
}

// TestExpressions checks constant expressions.
func TestExpressions(t *testing.T) {
	cases := []struct {
		expr string
		want uint32
		bo   string
	}{
		{"0", 0, ""},
		{"10", 10, ""},
		{"0x10", 16, ""},
		{"0o17", 15, ""},
		{"017", 15, ""},
		{"0b101", 5, ""},
		{"4294967295", 0xffffffff, ""},
		{"O_CREAT|O_TRUNC", 0o1100, ""},
		{"O_CREAT | 1", 0o101, ""},
		{"AF_INET", 2, ""},
		{"IPPROTO_UDP", 17, ""},
		{"IOSQE_ASYNC|IOSQE_IO_DRAIN", 0x12, ""},
		{"S_IRUSR|S_IWUSR", 0o600, ""},
		{"RESOLVE_IN_ROOT", 0x10, ""},
		{"SOCK_CLOEXEC", 0o2000000, ""},
		{"IORING_OP_SOCKET", 45, ""},
		{"port(80)", 0x5000, ""},
		{"port(80)", 80 << 16, "big"},
		{"port(0x1234)", 0x3412, ""},
		{"ip4(127.0.0.1)", 0x0100007f, ""},
		{"ip4(127.0.0.1)", 0x7f000001, "big"},
	}
	for _, c := range cases {
		src := "ld #" + c.expr
		if c.bo != "" {
			src = ".endian " + c.bo + "\n" + src
		}
		prog, err := Assemble([]byte(src), "e.s")
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if prog[0].K != c.want {
			t.Errorf("%s (%s) = %#x, want %#x", c.expr, c.bo, prog[0].K, c.want)
		}
	}
}

// TestConstNamesUnique makes sure a constant name means one value whatever
// the group, since assembly looks names up in every group.
func TestConstNamesUnique(t *testing.T) {
	seen := map[string]uint64{}
	for _, c := range abi.Consts() {
		if v, ok := seen[c.Name]; ok && v != c.Value {
			t.Errorf("%s has two values, %#x and %#x", c.Name, v, c.Value)
		}
		seen[c.Name] = c.Value
	}
}

// TestComments checks comments, blank lines, labels on their own line and
// a label at the end of the program.
func TestComments(t *testing.T) {
	src := "; a filter\n\n  ret #1 ; allow\n\t; just a comment\nend: ; nothing after\n"
	o, err := AssembleFile([]byte(src), "c.s")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Insns, []cbpf.Instruction{cbpf.Ret(1)}) || o.Pos[0] != (Pos{3, 3}) {
		t.Errorf("got %v at %v", o.Insns, o.Pos)
	}
	// A label at the end is a valid target (the checker rejects it).
	prog, err := Assemble([]byte("ja end\nend:\n"), "c.s")
	if err != nil || !slices.Equal(prog, []cbpf.Instruction{cbpf.Jump(0)}) {
		t.Errorf("jump to a label at the end: %v %v", prog, err)
	}
	// A CRLF file assembles like an LF one.
	prog, err = Assemble([]byte("ld #1\r\nret a\r\n"), "c.s")
	if err != nil || !slices.Equal(prog, []cbpf.Instruction{cbpf.LoadImm(1), cbpf.RetAcc()}) {
		t.Errorf("CRLF: %v %v", prog, err)
	}
}
