package kerneltest

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// bitReader returns a program that lets the kernel reveal one bit of its
// context per request: the low word of user_data selects word w (bits
// 5..8) and bit b (bits 0..4), and the program returns that bit of context
// word w, so the request runs when the bit is 1 and gets -EACCES when it is
// 0. Words 0 and 1 are user_data itself and are not readable this way.
func bitReader() []cbpf.Instruction {
	p := []cbpf.Instruction{
		cbpf.LoadAbs(0),
		cbpf.ALUK(cbpf.AluAnd, 31),
		cbpf.TAX(),
		cbpf.LoadAbs(0),
		cbpf.ALUK(cbpf.AluRsh, 5),
	}
	for w := 2; w < 10; w++ {
		p = append(p,
			cbpf.JumpIf(cbpf.JmpJEQ, uint32(w), 0, 4),
			cbpf.LoadAbs(uint32(4*w)),
			cbpf.ALUX(cbpf.AluRsh),
			cbpf.ALUK(cbpf.AluAnd, 1),
			cbpf.RetAcc(),
		)
	}
	return append(p, cbpf.Ret(0))
}

// observeCtx reads, bit by bit, the context words 2..9 the kernel gives a
// filter for req, by submitting req 256 times on a ring with bitReader
// (user_data is overwritten). Words 0 and 1 are returned as user_data as
// submitted for the last bit. req must not fail with -EACCES on its own:
// observeCtx checks that on an unfiltered ring first.
func observeCtx(req kernel.Request) ([10]uint32, error) {
	var w [10]uint32
	base, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return w, err
	}
	res, err := run(base, req)
	base.Close()
	if err != nil {
		return w, err
	}
	if res == eacces {
		return w, fmt.Errorf("observe context of %v: the request fails with -EACCES without any filter", req.Op)
	}
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return w, err
	}
	defer r.Close()
	if err := r.RegisterFilter(req.Op, bitReader(), 0, 0); err != nil {
		return w, err
	}
	for word := 2; word < 10; word++ {
		for bit := 0; bit < 32; bit++ {
			req.UserData = uint64(word<<5 | bit)
			res, err := run(r, req)
			if err != nil {
				return w, err
			}
			if res != eacces {
				w[word] |= 1 << bit
			}
		}
	}
	w[0] = uint32(req.UserData)
	w[1] = uint32(req.UserData >> 32)
	return w, nil
}

// ctxWords returns the context words of c in native order.
func ctxWords(c abi.Ctx) [10]uint32 {
	b := c.Encode(binary.NativeEndian)
	var w [10]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}
