package compile_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

func ExampleCompile() {
	p, err := policy.Parse([]byte(`
version: 1
default: deny
rules:
  - ops: [READ, WRITE]
    action: allow
  - ops: [SOCKET]
    action: allow
    when: {socket.family: [AF_INET, AF_INET6], socket.type: SOCK_STREAM}
`), "policy.yaml")
	if err != nil {
		panic(err)
	}
	plan, err := compile.Compile(p, compile.Options{Kernel: abi.Version{Major: 7, Minor: 0}})
	if err != nil {
		panic(err)
	}
	// READ and WRITE are always allowed: they get no filter, the
	// kernel's cheapest path. SOCKET gets its conditions; every other
	// opcode a one-instruction "ret #0".
	denied := 0
	for _, r := range plan.Registrations {
		if r.Prog.Len() > 1 {
			fmt.Printf("%v: %d instructions, flags %d, pdu_size %d\n", r.Op, r.Prog.Len(), r.Flags, r.PDUSize)
		} else {
			denied++
		}
	}
	fmt.Println("opcodes denied by ret #0:", denied)
	fmt.Println("newer opcodes denied by the applier:", plan.DenyNewOpcodes)
	req := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 10, Type: 1 | 0o4000}}
	fmt.Println("SOCKET(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK) allowed:", plan.Decide(req.Ctx(binary.LittleEndian)).Allow)
	fmt.Println("URING_CMD allowed:", plan.Decide(policy.Request{Op: abi.OpUringCmd}.Ctx(binary.LittleEndian)).Allow)
	fmt.Println("READ allowed, filters run:", len(plan.Decide(policy.Request{Op: abi.OpRead}.Ctx(binary.LittleEndian)).Runs))
	// Output:
	// SOCKET: 8 instructions, flags 0, pdu_size 12
	// opcodes denied by ret #0: 62
	// newer opcodes denied by the applier: true
	// SOCKET(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK) allowed: true
	// URING_CMD allowed: false
	// READ allowed, filters run: 0
}

func ExamplePlan_Text() {
	p, err := policy.Parse([]byte(`
version: 1
default: allow
rules:
  - ops: [OPENAT]
    action: deny
    when: {open.flags: {has_any: O_CREAT|O_TRUNC}}
`), "policy.yaml")
	if err != nil {
		panic(err)
	}
	plan, err := compile.Compile(p, compile.Options{Kernel: abi.Version{Major: 7, Minor: 0}})
	if err != nil {
		panic(err)
	}
	fmt.Print(plan.Text())
	// Output:
	// ; ringfence plan for Linux 7.0, little-endian: 1 registrations, 4 instructions
	//
	// ; registration 1: OPENAT (18): rules 1, then default allow
	// ; opcode IORING_OP_OPENAT (18), flags 0, pdu_size 24, 4 instructions
	// .view open
	// 	ld [open.flags.lo]
	// 	jset #O_CREAT|O_TRUNC, L3
	// 	ret #1
	// L3:
	// 	ret #0
}
