package asm_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
)

func ExampleAssemble() {
	src := `
	ld [socket.family]            ; a SOCKET filter
	jeq #AF_INET, allow
	jne #AF_INET6, deny
allow:	ret #1
deny:	ret #0
`
	prog, err := asm.Assemble([]byte(src), "inet.s")
	if err != nil {
		fmt.Println(err)
		return
	}
	js, _ := asm.Marshal(prog, asm.FormatJSON, nil)
	fmt.Print(string(js))
	_, err = asm.Assemble([]byte("\tjeq #AF_INTE, allow\n"), "typo.s")
	fmt.Println(err)
	// Output:
	// [
	//   [32, 0, 0, 16],
	//   [21, 1, 0, 2],
	//   [21, 0, 1, 10],
	//   [6, 0, 0, 1],
	//   [6, 0, 0, 0]
	// ]
	// typo.s:1:7: unknown constant "AF_INTE"; did you mean AF_INET?
}

func ExampleDisassemble() {
	prog := []cbpf.Instruction{
		cbpf.LoadAbs(abi.OffOpenFlags),
		cbpf.JumpIf(cbpf.JmpJSET, 0o1100, 1, 0),
		cbpf.Ret(1),
		cbpf.Ret(0),
		{Op: 0x28, K: 16}, // a half-word load: no mnemonic
	}
	fmt.Print(asm.Disassemble(prog, asm.Options{View: abi.ViewOpen, ByteOrder: binary.LittleEndian}))
	// Output:
	// .view open
	// 	ld [open.flags.lo]
	// 	jset #O_CREAT|O_TRUNC, L3
	// 	ret #1
	// L3:
	// 	ret #0
	// 	.insn 0x28, 0, 0, 0x10
}

func ExampleParseAny() {
	for _, in := range []string{
		"[[6, 0, 0, 1]]",
		"struct sock_filter f[] = {{0x06, 0, 0, 0x00000000}};",
		"[]cbpf.Instruction{{Op: 0x6, K: 7}}",
		"ret a",
	} {
		prog, err := asm.ParseAny([]byte(in))
		fmt.Print(asm.Disassemble(prog, asm.Options{}), err, "\n")
	}
	// Output:
	// 	ret #1
	// <nil>
	// 	ret #0
	// <nil>
	// 	ret #7
	// <nil>
	// 	ret a
	// <nil>
}
