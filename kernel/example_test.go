package kernel_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// The context a filter sees for an OPENAT request, as Linux 7.x prepares
// it: O_LARGEFILE is added, the mode is dropped without O_CREAT.
func ExampleRequest_Ctx() {
	req := kernel.Request{
		Op:   abi.OpOpenat,
		Open: kernel.OpenArgs{Dir: -100, Path: "/etc/passwd", Flags: 0, Mode: 0o644},
	}
	ctx, ok := req.Ctx(abi.Version{Major: 7, Minor: 0})
	o := ctx.Open(binary.LittleEndian)
	fmt.Printf("filters run: %v, pdu_size %d, flags %#o, mode %#o\n", ok, ctx.PDUSize, o.Flags, o.Mode)
	// Output: filters run: true, pdu_size 24, flags 0100000, mode 0
}

// Registering a filter on one ring: NOP requests on it get -EACCES. (Not
// run as a test: it needs Linux 7.0; package kerneltest runs the same.)
func ExampleRegisterRingFilter() {
	if err := kernel.Supported(); err != nil {
		fmt.Println(err) // e.g. "... this kernel has no io_uring BPF filters (needs Linux 7.0 with CONFIG_IO_URING_BPF)"
		return
	}
	r, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	if err := r.RegisterFilter(abi.OpNop, []cbpf.Instruction{cbpf.Ret(0)}, 0, 0); err != nil {
		fmt.Println(err)
		return
	}
	c, err := r.Do(kernel.Request{Op: abi.OpNop}.SQE())
	fmt.Println(c.Err(), err) // permission denied <nil>
}
