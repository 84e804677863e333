package kerneltest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// flagsEqualUserData allows a request when its context's sqe_flags equal
// the low byte of its user_data.
func flagsEqualUserData() []cbpf.Instruction {
	return []cbpf.Instruction{
		cbpf.LoadAbs(0),
		cbpf.ALUK(cbpf.AluAnd, 0xff),
		cbpf.TAX(),
		cbpf.LoadAbs(8),
		cbpf.ALUK(cbpf.AluRsh, 8),
		cbpf.ALUK(cbpf.AluAnd, 0xff),
		cbpf.JumpIfX(cbpf.JmpJEQ, 0, 1),
		cbpf.Ret(1),
		cbpf.Ret(0),
	}
}

// observeFlagsAfter returns the sqe_flags the kernel shows for a plain NOP
// submitted after the NOPs with flags prefix on a fresh ring.
func observeFlagsAfter(prefix []uint8, flags uint8) ([]uint8, error) {
	var seen []uint8
	for c := 0; c < 0x80; c++ {
		r, err := kernel.NewRing(kernel.Params{Entries: 4})
		if err != nil {
			return nil, err
		}
		if err := r.RegisterFilter(abi.OpNop, flagsEqualUserData(), 0, 0); err != nil {
			r.Close()
			return nil, err
		}
		for _, f := range prefix {
			if _, err := r.Do(kernel.Request{Op: abi.OpNop, Flags: f, UserData: uint64(f) | uint64(f&abi.IOSQEIODrain)<<3}.SQE()); err != nil {
				r.Close()
				return nil, err
			}
		}
		res, err := run(r, kernel.Request{Op: abi.OpNop, Flags: flags, UserData: uint64(c)})
		r.Close()
		if err != nil {
			return nil, err
		}
		if res != eacces {
			seen = append(seen, uint8(c))
		}
	}
	return seen, nil
}

// TestDrainMarksNext reads the sqe_flags a NOP shows after an IO_DRAIN
// NOP on the same ring: on Linux 7.0 to 7.2 every later request of the
// ring shows IOSQE_ASYNC, on 7.3 none does (see docs/kernel.md).
func TestDrainMarksNext(t *testing.T) {
	v := needFilters(t)
	marked := uint8(0)
	if v.Less(abi.Version{Major: 7, Minor: 3}) {
		marked = abi.IOSQEAsync
	}
	var report []string
	for _, c := range []struct {
		name   string
		prefix []uint8
		flags  uint8
		want   uint8
	}{
		{"plain after drain", []uint8{abi.IOSQEIODrain}, 0, marked},
		{"async after drain", []uint8{abi.IOSQEIODrain}, abi.IOSQEAsync, abi.IOSQEAsync},
		{"plain after drain, plain", []uint8{abi.IOSQEIODrain, 0}, 0, marked},
		{"plain on a fresh ring", nil, 0, 0},
	} {
		seen, err := observeFlagsAfter(c.prefix, c.flags)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 {
			t.Errorf("%s: %d sqe_flags values matched (%v), want exactly one", c.name, len(seen), seen)
			continue
		}
		if seen[0] != c.want {
			t.Errorf("Linux %v: %s: sqe_flags %#x, want %#x", v, c.name, seen[0], c.want)
		}
		report = append(report, fmt.Sprintf("%s: %#x", c.name, seen[0]))
	}
	t.Logf("Linux %v: sqe_flags seen by filters: %s", v, strings.Join(report, "; "))
}
