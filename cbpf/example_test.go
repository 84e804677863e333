package cbpf_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// Check a filter that allows only AF_INET sockets, then run it on two
// contexts as the kernel would.
func Example() {
	prog, err := cbpf.Check([]cbpf.Instruction{
		cbpf.LoadAbs(abi.OffSocketFamily),
		cbpf.JumpIf(cbpf.JmpJEQ, 2 /* AF_INET */, 0, 1),
		cbpf.Ret(1),
		cbpf.Ret(0),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, family := range []uint32{2, 17} {
		var ctx abi.Ctx
		ctx.Opcode = uint8(abi.OpSocket)
		ctx.SetSocket(abi.SocketData{Family: family, Type: 1}, binary.LittleEndian)
		w := cbpf.WordsOf(ctx.Encode(binary.LittleEndian), binary.LittleEndian)
		ret, path := prog.Trace(&w)
		fmt.Printf("family %d: ret %d, path %v\n", family, ret, path)
	}
	// Output:
	// family 2: ret 1, path [0 1 2]
	// family 17: ret 0, path [0 1 3]
}

// The checker names the instruction and the rule it breaks.
func ExampleCheck() {
	_, err := cbpf.Check([]cbpf.Instruction{cbpf.LoadAbs(42), cbpf.RetAcc()})
	fmt.Println(err)
	// Output:
	// instruction 0 {0x20, 0, 0, 0x2a}: ld [42]: context loads must be 4-byte aligned words at offsets 0 to 36
}
