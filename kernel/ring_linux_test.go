package kernel

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
)

// These tests need io_uring (Linux 5.10+ with io_uring enabled) but not
// BPF filters, so they run on the host too.

func hostRing(t *testing.T, p Params) *Ring {
	t.Helper()
	r, err := NewRing(p)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			t.Skipf("io_uring is unavailable here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRingNop(t *testing.T) {
	r := hostRing(t, Params{Entries: 4})
	if r.Entries() != 4 {
		t.Errorf("Entries = %d, want 4", r.Entries())
	}
	c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: 77})
	if err != nil || c.UserData != 77 || c.Res != 0 || c.Err() != nil {
		t.Fatalf("NOP: %+v, %v", c, err)
	}
	// A batch larger than the queue is refused before anything is queued.
	if _, err := r.Submit(make([]SQE, 5), 0); err == nil {
		t.Error("5 SQEs on a 4-entry ring: no error")
	}
	// A batch completes fully, repeatedly (head and tail wrap).
	for round := 0; round < 5; round++ {
		sqes := []SQE{{Opcode: abi.OpNop, UserData: 1}, {Opcode: abi.OpNop, UserData: 2}, {Opcode: abi.OpNop, UserData: 3}}
		if n, err := r.Submit(sqes, 3); err != nil || n != 3 {
			t.Fatalf("round %d: Submit = %d, %v", round, n, err)
		}
		cqes, err := r.Wait(3)
		if err != nil || len(cqes) != 3 {
			t.Fatalf("round %d: Wait = %v, %v", round, cqes, err)
		}
		sum := uint64(0)
		for _, c := range cqes {
			sum += c.UserData
		}
		if sum != 6 {
			t.Errorf("round %d: user_data %v", round, cqes)
		}
	}
}

func TestRingSkipSuccess(t *testing.T) {
	r := hostRing(t, Params{Entries: 4})
	c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: 5, Flags: abi.IOSQECQESkipSuccess | abi.IOSQEIOLink})
	if err != nil || !c.Skipped || c.Res != 0 || c.UserData != 5 {
		t.Fatalf("skip-success NOP: %+v, %v", c, err)
	}
	// A failing request still completes: SOCKET with an invalid type.
	c, err = r.Do(Request{Op: abi.OpSocket, Flags: abi.IOSQECQESkipSuccess, UserData: 6, Socket: SocketArgs{2, 0x100, 0}}.SQE())
	if err != nil || c.Skipped || c.Res != -int32(unix.EINVAL) {
		t.Fatalf("failing skip-success SOCKET: %+v, %v", c, err)
	}
	// The ring is still in step.
	if c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: 7}); err != nil || c.UserData != 7 {
		t.Fatalf("NOP after: %+v, %v", c, err)
	}
}

func TestRingRequests(t *testing.T) {
	r := hostRing(t, Params{})
	c, err := r.Do(Request{Op: abi.OpSocket, Socket: SocketArgs{unix.AF_INET, unix.SOCK_DGRAM, 0}}.SQE())
	if err != nil || c.Res < 0 {
		t.Fatalf("SOCKET: %+v, %v", c, err)
	}
	unix.Close(int(c.Res))
	dir := t.TempDir()
	c, err = r.Do(Request{Op: abi.OpOpenat, Open: OpenArgs{Dir: unix.AT_FDCWD, Path: dir + "/new", Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o600}}.SQE())
	if err != nil || c.Res < 0 {
		t.Fatalf("OPENAT: %+v, %v", c, err)
	}
	unix.Close(int(c.Res))
	c, err = r.Do(Request{Op: abi.OpOpenat2, Open: OpenArgs{Dir: unix.AT_FDCWD, Path: dir + "/new", Resolve: unix.RESOLVE_NO_SYMLINKS}}.SQE())
	if err != nil || c.Res < 0 {
		t.Fatalf("OPENAT2: %+v, %v", c, err)
	}
	unix.Close(int(c.Res))
	c, err = r.Do(Request{Op: abi.OpOpenat2, Open: OpenArgs{Dir: unix.AT_FDCWD, Path: dir + "/new", HowSize: 16}}.SQE())
	if err != nil || c.Res != -int32(unix.EINVAL) {
		t.Fatalf("OPENAT2 with a short open_how: %+v, %v", c, err)
	}
	c, err = r.Do(Request{Op: abi.OpConnect, Connect: ConnectArgs{FD: -1, Addr: SockaddrInet4(1, [4]byte{127, 0, 0, 1}), AddrLen: 16}}.SQE())
	if err != nil || c.Res != -int32(unix.EBADF) {
		t.Fatalf("CONNECT on fd -1: %+v, %v", c, err)
	}
}

func TestRingSQPoll(t *testing.T) {
	r := hostRing(t, Params{Flags: SetupSQPoll, SQThreadIdle: 10})
	for i := uint64(0); i < 20; i++ {
		if c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: i}); err != nil || c.UserData != i {
			t.Fatalf("SQPOLL NOP %d: %+v, %v", i, c, err)
		}
	}
}

// TestRingAttachWQ: Params.WQFD reaches the kernel. A ring attached to
// another ring runs requests; attached to a pipe, or to no descriptor,
// the kernel refuses it.
func TestRingAttachWQ(t *testing.T) {
	for _, flags := range []uint32{0, SetupSQPoll} {
		first := hostRing(t, Params{Flags: flags, SQThreadIdle: 10})
		r := hostRing(t, Params{Flags: flags | SetupAttachWQ, WQFD: first.FD()})
		if c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: 5}); err != nil || c.UserData != 5 || c.Res != 0 {
			t.Fatalf("flags %#x: NOP on the attached ring: %+v, %v", flags, c, err)
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		for _, fd := range []int{p[0], -1} {
			if r, err := NewRing(Params{Flags: flags | SetupAttachWQ, WQFD: fd}); err == nil {
				r.Close()
				t.Errorf("flags %#x: a ring attached to descriptor %d", flags, fd)
			}
		}
		unix.Close(p[0])
		unix.Close(p[1])
	}
}

// TestRingRestrictionsHost: ring restrictions exist since Linux 5.10.
func TestRingRestrictionsHost(t *testing.T) {
	r := hostRing(t, Params{Flags: SetupRDisabled})
	_, err := r.Do(SQE{Opcode: abi.OpNop})
	if !errors.Is(err, unix.EBADFD) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("NOP on a disabled ring: %v, want EBADFD explained", err)
	}
	if err := r.RegisterRestrictions([]abi.Restriction{{Op: abi.RestrictSQEOp, Value: uint8(abi.OpNop)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Enable(); err != nil {
		t.Fatal(err)
	}
	// The NOP refused while disabled was withdrawn, not queued.
	if c, err := r.Do(SQE{Opcode: abi.OpNop, UserData: 3}); err != nil || c.UserData != 3 || c.Res != 0 {
		t.Fatalf("NOP after enable: %+v, %v", c, err)
	}
	c, err := r.Do(Request{Op: abi.OpSocket, Socket: SocketArgs{unix.AF_INET, unix.SOCK_DGRAM, 0}}.SQE())
	if err != nil || c.Res != -int32(unix.EACCES) {
		t.Fatalf("SOCKET outside the restrictions: %+v, %v", c, err)
	}
	// A second Enable fails: EBADFD (the ring is not disabled), or EACCES
	// where the restrictions also cover register operations (before 7.0).
	if err := r.Enable(); !errors.Is(err, unix.EBADFD) && !errors.Is(err, unix.EACCES) {
		t.Errorf("second Enable: %v, want EBADFD or EACCES", err)
	}
}

func TestProbeOpcodesHost(t *testing.T) {
	hostRing(t, Params{})
	p, err := ProbeOpcodes()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Has(abi.OpNop) || !p.Has(abi.OpOpenat) || p.Has(200) || p.LastOp == 0 {
		t.Errorf("probe %+v", p)
	}
}

func TestNoNewPrivsReads(t *testing.T) {
	if _, err := NoNewPrivs(); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	e := errRegister("register BPF filter on task for NOP", unix.EACCES, abi.RegisterBPFFilter, true)
	if !errors.Is(e, unix.EACCES) || !strings.Contains(e.Error(), "no_new_privs") || !strings.Contains(e.Error(), "CAP_SYS_ADMIN") {
		t.Errorf("task EACCES: %v", e)
	}
	e = errRegister("register BPF filter on ring 3 for NOP", unix.EINVAL, abi.RegisterBPFFilter, false)
	if !errors.Is(e, unix.EINVAL) || !strings.Contains(e.Error(), "cbpf.Check") {
		t.Errorf("EINVAL: %v", e)
	}
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM} {
		if e := errSetup(errno, 0); !errors.Is(e, errno) || !strings.Contains(e.Error(), "io_uring") {
			t.Errorf("setup %v: %v", errno, e)
		}
	}
	if e := errSetup(unix.EPERM, 0); !strings.Contains(e.Error(), "io_uring_disabled") {
		t.Errorf("setup EPERM does not mention the sysctl: %v", e)
	}
	pe := &PDUSizeError{Op: abi.OpSocket, Asked: 13, Kernel: 12}
	if !errors.Is(pe, unix.EMSGSIZE) || !strings.Contains(pe.Error(), "12") {
		t.Errorf("PDUSizeError: %v", pe)
	}
}

// TestSupportedHost: from 7.0 Supported is nil; before, every probe says
// why.
func TestSupportedHost(t *testing.T) {
	hostRing(t, Params{})
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	err = Supported()
	if !v.Less(abi.FilterSince()) {
		if err != nil {
			t.Errorf("Supported on Linux %v = %v, want nil", v, err)
		}
		return
	}
	if !errors.Is(err, ErrNoFilters) || !strings.Contains(err.Error(), "Linux 7.0") {
		t.Errorf("Supported on Linux %v = %v", v, err)
	}
	if _, err := PDUSizes(); !errors.Is(err, ErrNoFilters) {
		t.Errorf("PDUSizes on Linux %v = %v", v, err)
	}
}

// TestRingSQPollSkipSuccessLink: on an SQPOLL ring, Do's marker NOP must
// not join the link chain of a failing CQE_SKIP_SUCCESS request.
func TestRingSQPollSkipSuccessLink(t *testing.T) {
	r := hostRing(t, Params{Flags: SetupSQPoll, SQThreadIdle: 10})
	bad := Request{Op: abi.OpSocket, Flags: abi.IOSQECQESkipSuccess | abi.IOSQEIOLink, Socket: SocketArgs{2, 0x100, 0}}
	for i := uint64(0); i < 20; i++ {
		bad.UserData = i
		c, err := r.Do(bad.SQE())
		if err != nil || c.Skipped || c.Res != -int32(unix.EINVAL) || c.UserData != i {
			t.Fatalf("round %d: %+v, %v", i, c, err)
		}
		c, err = r.Do(SQE{Opcode: abi.OpNop, UserData: 100 + i, Flags: abi.IOSQECQESkipSuccess | abi.IOSQEIOLink})
		if err != nil || !c.Skipped {
			t.Fatalf("round %d: skipped NOP: %+v, %v", i, c, err)
		}
	}
}

// TestVerifyProcFD accepts this process's /proc/self/fd and refuses a
// directory on another file system and another process's fd directory.
func TestVerifyProcFD(t *testing.T) {
	if err := VerifyProcFD("/proc/self/fd"); err != nil {
		t.Fatalf("/proc/self/fd: %v", err)
	}
	if err := VerifyProcFD(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not on procfs") {
		t.Errorf("a temporary directory: %v, want not on procfs", err)
	}
	if err := VerifyProcFD("/proc/1/fd"); err == nil {
		t.Error("pid 1's fd directory accepted")
	}
}
