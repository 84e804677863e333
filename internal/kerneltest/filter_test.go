package kerneltest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

func sockReq(d, ty uint32) kernel.Request {
	return kernel.Request{Op: abi.OpSocket, UserData: 1, Socket: kernel.SocketArgs{Domain: d, Type: ty}}
}

// TestSupported checks that Supported answers for the running kernel:
// nil from 7.0 on, an error wrapping ErrNoFilters before. It runs on any
// host.
func TestSupported(t *testing.T) {
	v, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	err = kernel.Supported()
	t.Logf("Linux %v: Supported() = %v", v, err)
	if v.Less(abi.FilterSince()) {
		if !errors.Is(err, kernel.ErrNoFilters) {
			t.Fatalf("Linux %v has no filters, Supported() = %v, want an error wrapping ErrNoFilters", v, err)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("Supported() = %v, want it to wrap EINVAL", err)
		}
		// Every entry point says the same.
		if err := kernel.RegisterRingFilter(ringFD(t), abi.OpNop, allowAll(), 0, 0); !errors.Is(err, unix.EINVAL) {
			t.Errorf("RegisterRingFilter on Linux %v = %v, want EINVAL", v, err)
		}
		if _, err := kernel.ProbePDUSize(abi.OpSocket); !errors.Is(err, kernel.ErrNoFilters) {
			t.Errorf("ProbePDUSize on Linux %v = %v, want ErrNoFilters", v, err)
		}
		if _, err := kernel.TaskRestricted(); !errors.Is(err, kernel.ErrNoFilters) {
			t.Errorf("TaskRestricted on Linux %v = %v, want ErrNoFilters", v, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Linux %v: Supported() = %v, want nil", v, err)
	}
}

func ringFD(t testing.TB) int { return newRing(t, kernel.Params{}).FD() }

// TestRingFilterDenyAllow: a ring filter judges its opcode on its ring
// only.
func TestRingFilterDenyAllow(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{})
	other := newRing(t, kernel.Params{})
	expectAllowed(t, r, nop(1), true, "NOP before any filter")
	if err := r.RegisterFilter(abi.OpNop, denyAll(), 0, 0); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, nop(1), false, "NOP after deny filter")
	expectAllowed(t, r, sockReq(unix.AF_INET, unix.SOCK_STREAM), true, "SOCKET on the same ring (no filter for it)")
	expectAllowed(t, other, nop(1), true, "NOP on another ring")
	if err := r.RegisterFilter(abi.OpSocket, allowAll(), 0, abi.PDUSizeSocket); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, sockReq(unix.AF_INET, unix.SOCK_STREAM), true, "SOCKET with allow filter")
	// A program's verdict is its return value, any nonzero allows.
	r2 := newRing(t, kernel.Params{})
	if err := r2.RegisterFilter(abi.OpNop, retUserDataLow(), 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, ud := range []uint64{1, 2, 0x80000000, 0xffffffff, 1 << 32} {
		expectAllowed(t, r2, nop(ud), uint32(ud) != 0, fmt.Sprintf("NOP user_data %#x with RET A", ud))
	}
}

// TestRingFilterStack: filters stacked on one opcode must all allow.
func TestRingFilterStack(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{})
	bit := func(m uint32) []cbpf.Instruction {
		return []cbpf.Instruction{cbpf.LoadAbs(0), cbpf.ALUK(cbpf.AluAnd, m), cbpf.RetAcc()}
	}
	for _, m := range []uint32{1, 2, 4} {
		if err := r.RegisterFilter(abi.OpNop, bit(m), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	for ud := uint64(0); ud < 8; ud++ {
		expectAllowed(t, r, nop(ud), ud == 7, fmt.Sprintf("NOP user_data %d under filters &1, &2, &4", ud))
	}
}

// TestDenyRest: DENY_REST denies every opcode without a filter yet, and a
// later allow filter cannot revive one.
func TestDenyRest(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{})
	if err := r.RegisterFilter(abi.OpOpenat, allowAll(), 0, abi.PDUSizeOpen); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFilter(abi.OpNop, retUserDataLow(), abi.FilterDenyRest, 0); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, nop(1), true, "NOP allowed by its filter")
	expectAllowed(t, r, nop(1<<32), false, "NOP denied by its filter")
	expectAllowed(t, r, sockReq(unix.AF_INET, unix.SOCK_STREAM), false, "SOCKET denied by DENY_REST")
	openReq := kernel.Request{Op: abi.OpOpenat, Open: kernel.OpenArgs{Dir: unix.AT_FDCWD, Path: "/", Flags: unix.O_RDONLY}}
	expectAllowed(t, r, openReq, true, "OPENAT registered before DENY_REST")
	// An allow filter on a denied opcode runs first, then the stub denies.
	if err := r.RegisterFilter(abi.OpSocket, allowAll(), 0, abi.PDUSizeSocket); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, sockReq(unix.AF_INET, unix.SOCK_STREAM), false, "SOCKET after a later allow filter")
	// A second DENY_REST changes nothing for opcodes that have filters.
	if err := r.RegisterFilter(abi.OpOpenat, allowAll(), abi.FilterDenyRest, abi.PDUSizeOpen); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, nop(1), true, "NOP after a second DENY_REST")
	expectAllowed(t, r, openReq, true, "OPENAT after a second DENY_REST")
}

// TestPDUSize: equal and smaller sizes are accepted, larger ones and any
// difference under SZ_STRICT get EMSGSIZE with the kernel's size written
// back; ProbePDUSize matches ringfence's table for every opcode.
func TestPDUSize(t *testing.T) {
	v := needFilters(t)
	r := newRing(t, kernel.Params{})
	cases := []struct {
		op     abi.Opcode
		size   uint8
		flags  uint32
		ok     bool
		kernel uint8
	}{
		{abi.OpSocket, 12, 0, true, 12},
		{abi.OpSocket, 0, 0, true, 12},
		{abi.OpSocket, 4, 0, true, 12},
		{abi.OpSocket, 13, 0, false, 12},
		{abi.OpSocket, 255, 0, false, 12},
		{abi.OpSocket, 12, abi.FilterSzStrict, true, 12},
		{abi.OpSocket, 8, abi.FilterSzStrict, false, 12},
		{abi.OpOpenat2, 24, abi.FilterSzStrict, true, 24},
		{abi.OpOpenat, 25, 0, false, 24},
		{abi.OpNop, 0, abi.FilterSzStrict, true, 0},
		{abi.OpNop, 1, 0, false, 0},
	}
	for _, c := range cases {
		err := r.RegisterFilter(c.op, allowAll(), c.flags, c.size)
		var pe *kernel.PDUSizeError
		switch {
		case c.ok && err != nil:
			t.Errorf("%v pdu_size %d flags %d: %v, want accepted", c.op, c.size, c.flags, err)
		case !c.ok && !errors.As(err, &pe):
			t.Errorf("%v pdu_size %d flags %d: %v, want a PDUSizeError", c.op, c.size, c.flags, err)
		case !c.ok && (pe.Kernel != c.kernel || !errors.Is(err, unix.EMSGSIZE)):
			t.Errorf("%v pdu_size %d: kernel wrote back %d (%v), want %d and EMSGSIZE", c.op, c.size, pe.Kernel, err, c.kernel)
		}
	}
	sizes, err := kernel.PDUSizes()
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range abi.Opcodes() {
		want := uint8(0)
		if info.HasData(v) {
			want = info.PDUSize
		}
		if sizes[info.Op] != want {
			t.Errorf("Linux %v: pdu_size of %v is %d, ringfence's table says %d", v, info.Op, sizes[info.Op], want)
		}
	}
	t.Logf("Linux %v: pdu_size SOCKET=%d OPENAT=%d OPENAT2=%d CONNECT=%d", v, sizes[abi.OpSocket], sizes[abi.OpOpenat], sizes[abi.OpOpenat2], sizes[abi.OpConnect])
}

// TestRegistrationErrors: what the kernel refuses before looking at the
// program.
func TestRegistrationErrors(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{})
	if err := r.RegisterFilter(abi.OpLast-1, allowAll(), 0, 0); err != nil {
		t.Errorf("opcode %d (the last): %v", abi.OpLast-1, err)
	}
	for _, c := range []struct {
		name  string
		op    abi.Opcode
		prog  []cbpf.Instruction
		flags uint32
	}{
		{"opcode OpLast", abi.OpLast, allowAll(), 0},
		{"opcode 255", 255, allowAll(), 0},
		{"unknown flag 4", abi.OpNop, allowAll(), 4},
		{"empty program", abi.OpNop, nil, 0},
		{"4097 instructions", abi.OpNop, make([]cbpf.Instruction, 4097), 0},
		{"invalid code", abi.OpNop, []cbpf.Instruction{{Op: 0xffff}, cbpf.Ret(1)}, 0},
	} {
		err := r.RegisterFilter(c.op, c.prog, c.flags, 0)
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", c.name, err)
		}
	}
	// Probing an opcode the kernel does not know is not "no filters".
	if _, err := kernel.ProbePDUSize(abi.OpLast); err == nil || errors.Is(err, kernel.ErrNoFilters) || !strings.Contains(err.Error(), "does not know the opcode") {
		t.Errorf("ProbePDUSize(%d): %v, want an unknown-opcode error", abi.OpLast, err)
	}
	// Not a ring.
	if err := kernel.RegisterRingFilter(0, abi.OpNop, allowAll(), 0, 0); !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EBADF) {
		t.Errorf("register on fd 0: %v, want EOPNOTSUPP or EBADF", err)
	}
}

// TestSQPollFiltered: a ring whose submissions a kernel thread polls is
// filtered the same way.
func TestSQPollFiltered(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{Flags: kernel.SetupSQPoll, SQThreadIdle: 100})
	if err := r.RegisterFilter(abi.OpNop, retUserDataLow(), 0, 0); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, nop(5), true, "SQPOLL NOP user_data 5")
	expectAllowed(t, r, nop(0), false, "SQPOLL NOP user_data 0")
	expectAllowed(t, r, kernel.Request{Op: abi.OpNop, Flags: abi.IOSQEAsync}, false, "SQPOLL NOP async user_data 0")
}

// TestRingRestrictions: restrictions on a disabled ring, then enable.
func TestRingRestrictions(t *testing.T) {
	needFilters(t)
	r := newRing(t, kernel.Params{Flags: kernel.SetupRDisabled})
	if _, err := r.Do(nop(1).SQE()); !errnoIs(err, unix.EBADFD) {
		t.Errorf("submit on a disabled ring: %v, want EBADFD", err)
	}
	rs := []abi.Restriction{{Op: abi.RestrictSQEOp, Value: uint8(abi.OpNop)}}
	if err := r.RegisterRestrictions(rs); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterRestrictions(rs); !errnoIs(err, unix.EBUSY) {
		t.Errorf("second restrictions: %v, want EBUSY", err)
	}
	if err := r.RegisterFilter(abi.OpNop, retUserDataLow(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Enable(); err != nil {
		t.Fatal(err)
	}
	expectAllowed(t, r, nop(1), true, "NOP allowed by restriction and filter")
	expectAllowed(t, r, nop(0), false, "NOP denied by the filter")
	expectAllowed(t, r, sockReq(unix.AF_INET, unix.SOCK_STREAM), false, "SOCKET outside the restriction")
	enabled := newRing(t, kernel.Params{})
	if err := enabled.RegisterRestrictions(rs); !errnoIs(err, unix.EBADFD) {
		t.Errorf("restrictions on an enabled ring: %v, want EBADFD", err)
	}
}

// TestProbeOpcodes: the kernel lists the opcodes ringfence knows.
func TestProbeOpcodes(t *testing.T) {
	v := needFilters(t)
	p, err := kernel.ProbeOpcodes()
	if err != nil {
		t.Fatal(err)
	}
	if int(p.LastOp) != abi.OpLast-1 {
		t.Errorf("Linux %v: last opcode %d, ringfence knows %d", v, p.LastOp, abi.OpLast-1)
	}
	for _, op := range []abi.Opcode{abi.OpNop, abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect} {
		if !p.Has(op) {
			t.Errorf("Linux %v: probe says %v is unsupported", v, op)
		}
	}
	t.Logf("Linux %v: %d opcodes supported, last %d", v, len(p.Supported), p.LastOp)
}
