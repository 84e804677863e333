package asm

import (
	"errors"
	"testing"
)

func TestErrors(t *testing.T) {
	cases := []struct {
		src, want string
	}{
		{"jqe #1, a\na: ret #1", `f.s:1:1: unknown instruction "jqe"; did you mean jeq?`},
		{"ld #AF_INTE\nret a", `f.s:1:5: unknown constant "AF_INTE"; did you mean AF_INET?`},
		{"ld #O_CREAT|O_TRUNK", `f.s:1:13: unknown constant "O_TRUNK"; did you mean O_TRUNC?`},
		{"ld #IORING_OP_SOKET", `f.s:1:5: unknown opcode "IORING_OP_SOKET"; did you mean IORING_OP_SOCKET?`},
		{"ld [socket.famly]", `f.s:1:5: unknown context word "socket.famly"; did you mean socket.family?`},
		{"ld [opcode]", `f.s:1:5: opcode is a 1-byte field inside the word op_flags_pdu at offset 8: load [op_flags_pdu], then it is (A >> 0) & 0xff`},
		{".endian big\nld [sqe_flags]", `f.s:2:5: sqe_flags is a 1-byte field inside the word op_flags_pdu at offset 8: load [op_flags_pdu], then it is (A >> 16) & 0xff`},
		{"ld [open.flags]", `f.s:1:5: open.flags is 64 bits wide; load its 32-bit halves open.flags.lo and open.flags.hi`},
		{".view socket\nld [open.flags.lo]", `f.s:2:5: open.flags.lo belongs to the open view, but this file declares .view socket`},
		{"ld [zzzzzzzzzzzz]", `f.s:1:5: unknown context word "zzzzzzzzzzzz" (write a field such as socket.family, open.flags.lo, connect.port, or a byte offset such as [16])`},
		{"ldx [16]", `f.s:1:5: ldx cannot load a context word (classic BPF has no such code); use ld [...] then tax`},
		{"ldh [16]", `f.s:1:1: ldh has no mnemonic here: io_uring filters may only load whole 32-bit context words (ld [word]); write .insn CODE, JT, JF, K for other codes`},
		{"ld", `f.s:1:3: ld takes #value, [context word], M[n] or len; found end of line`},
		{"ld #", `f.s:1:5: expected a number or constant name, found end of line`},
		{"ld #4294967296", `f.s:1:5: value 0x100000000 does not fit in 32 bits`},
		{"ld #99999999999999999999", `f.s:1:5: number 99999999999999999999 does not fit in 32 bits`},
		{"ld #0xZZ", `f.s:1:5: bad number "0xZZ" (write decimal, 0x hex, 0o or leading-0 octal, or 0b binary)`},
		{"ld #1 2", `f.s:1:7: unexpected "2" after the statement`},
		{"add y", `f.s:1:5: add takes #value or x, found "y"`},
		{"ret x", `f.s:1:5: ret takes #value or a, found "x"`},
		{"st [3]", `f.s:1:4: expected a scratch cell M[n], found "["`},
		{"st M[3", `f.s:1:7: expected ']' closing M[n], found end of line`},
		{"jeq #1 a", `f.s:1:8: expected ',' before the jump target, found "a"`},
		{"jeq #1, 3", `f.s:1:9: a jump target is a label or +N (a number of instructions to skip), found "3"`},
		{"jeq #1, +256", `f.s:1:10: offset +256 does not fit in 8 bits; jump to a label and the assembler lowers long jumps`},
		{"ja +4294967296", `f.s:1:5: offset +4294967296 does not fit in 32 bits`},
		{"jeq #1, nowhere\nelsewhere: ret #0", `f.s:1:9: undefined label "nowhere"; did you mean elsewhere?`},
		{"back: ld #1\n ja back", `f.s:2:5: label "back" (line 1) is not after this jump: classic BPF jumps only forward`},
		{"self: ja self", `f.s:1:10: label "self" (line 1) is not after this jump: classic BPF jumps only forward`},
		{"a: ret #0\na: ret #1", `f.s:2:1: label "a" already defined at line 1`},
		{"l.x: ret #0", `f.s:1:1: bad label name "l.x": use letters, digits and '_', starting with a letter or '_'`},
		{"ld #1 @", `f.s:1:7: unexpected character "@"`},
		{"ret #1\n.view socket", `f.s:2:1: .view must come before the first instruction`},
		{".view sockets", `f.s:1:7: unknown view "sockets": want common, socket, open or connect`},
		{".endian middle", `f.s:1:9: unknown byte order "middle": want little or big`},
		{".endian big\n.endian big", `f.s:2:1: .endian given twice`},
		{".view open\n.view open", `f.s:2:1: .view given twice`},
		{".insn 0x10000, 0, 0, 0", `f.s:1:7: .insn code 0x10000 does not fit (at most 0xffff)`},
		{".insn 6, 256, 0, 0", `f.s:1:10: .insn jt 0x100 does not fit (at most 0xff)`},
		{".insn 6, 0, 0", `f.s:1:14: expected ',' between the four fields of .insn CODE, JT, JF, K, found end of line`},
		{".instr 6", `f.s:1:1: unknown directive ".instr"; did you mean .insn?`},
		{"ld #port(70000)", `f.s:1:10: port 70000 is larger than 65535`},
		{"ld #ip4(::1)", `f.s:1:9: ip4() takes an IPv4 address such as 127.0.0.1, found ":"`},
		{"ld #ip4(1.2.3.4", `f.s:1:16: expected ')' closing ip4(, found end of line`},
		{"ld #htons(80)", `f.s:1:5: unknown function "htons": use port(N) or ip4(a.b.c.d)`},
		{"#1", `f.s:1:1: expected an instruction, a directive or a label, found "#"`},
	}
	for _, c := range cases {
		_, err := Assemble([]byte(c.src), "f.s")
		if err == nil {
			t.Errorf("%q: no error, want %s", c.src, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.src, err, c.want)
		}
	}
}

// TestErrorListSorted checks that every error is reported, in position
// order, and that each carries its line and column.
func TestErrorListSorted(t *testing.T) {
	src := "jeq #1, missing\nld #BAD\n\tfoo\nret #1\nbar: ret #2\nbar: ret #3\n"
	_, err := Assemble([]byte(src), "f.s")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an ErrorList", err)
	}
	// Label errors are only looked for when every line parsed, so the
	// undefined label on line 1 is not among these.
	want := []struct{ line, col int }{{2, 5}, {3, 2}, {6, 1}}
	if len(list) != len(want) {
		t.Fatalf("got %d errors:\n%v", len(list), err)
	}
	for i, w := range want {
		if list[i].Line != w.line || list[i].Col != w.col {
			t.Errorf("error %d at %d:%d, want %d:%d: %v", i, list[i].Line, list[i].Col, w.line, w.col, list[i])
		}
	}
	// Two undefined labels: both reported, in order.
	_, err = Assemble([]byte("ja b2\nja a1\nret #0"), "f.s")
	if got, want := err.Error(), "f.s:1:4: undefined label \"b2\"\nf.s:2:4: undefined label \"a1\""; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
