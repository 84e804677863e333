package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// register calls io_uring_register(fd, op, arg, nr).
func register(fd int, op int, arg unsafe.Pointer, nr int) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
	return errno
}

// registerFilter registers prog for op on fd (-1 for the calling task)
// and returns the pdu_size the kernel wrote back.
func registerFilter(fd int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) (uint8, error) {
	who := "task"
	if fd >= 0 {
		who = fmt.Sprintf("ring %d", fd)
	}
	name := fmt.Sprintf("register BPF filter on %s for %v", who, op)
	raw := cbpf.Encode(prog, binary.NativeEndian)
	if len(raw) == 0 {
		// filter_len 0 is refused with EINVAL; pass a valid pointer anyway.
		raw = make([]byte, 8)
	}
	f := abi.Filter{Opcode: uint32(op), Flags: flags, Len: uint32(len(prog)), PDUSize: pduSize,
		Ptr: uint64(uintptr(unsafe.Pointer(&raw[0])))}
	b := f.EncodeBPF(binary.NativeEndian)
	errno := register(fd, abi.RegisterBPFFilter, unsafe.Pointer(&b[0]), 1)
	runtime.KeepAlive(raw)
	back := b[abi.OffBPFFilter+abi.OffFilterPDUSize]
	switch errno {
	case 0:
		return back, nil
	case unix.EMSGSIZE:
		return back, &PDUSizeError{Op: op, Asked: pduSize, Kernel: back, Strict: flags&abi.FilterSzStrict != 0}
	}
	return back, errRegister(name, errno, abi.RegisterBPFFilter, fd < 0)
}

// RegisterTaskFilter registers a filter for opcode op on the calling
// thread: every ring this thread, and every process it forks afterwards,
// creates from now on runs prog for each op request. Filters cannot be
// removed. Rings created before the thread's first task filter are never
// filtered; on Linux 7.0 to 7.2 (not 7.3) a ring created after an earlier
// task filter also gets later ones, as it shares the thread's table. It needs no_new_privs (SetNoNewPrivs) or CAP_SYS_ADMIN; see the
// package documentation about threads. flags are abi.FilterDenyRest and
// abi.FilterSzStrict; pduSize is the size of per-opcode data the program
// was written for. A pdu_size the kernel refuses gives a *PDUSizeError.
func RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error {
	_, err := registerFilter(-1, op, prog, flags, pduSize)
	return err
}

// RegisterRingFilter registers a filter for opcode op on the ring ringFD
// only. See RegisterTaskFilter for flags and pduSize.
func RegisterRingFilter(ringFD int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error {
	if ringFD < 0 {
		return fmt.Errorf("register BPF filter on ring: bad ring fd %d (use RegisterTaskFilter for the task)", ringFD)
	}
	_, err := registerFilter(ringFD, op, prog, flags, pduSize)
	return err
}

// ProbePDUSize returns the kernel's pdu_size for op: how many bytes of
// per-opcode data its filters see (0 for opcodes without data). It asks
// with an impossible size on a throwaway ring and reads the size the
// kernel writes back, so neither the task nor any ring is changed.
func ProbePDUSize(op abi.Opcode) (uint8, error) {
	r, err := NewRing(Params{Entries: 1})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return probePDUSize(r.fd, op)
}

func probePDUSize(fd int, op abi.Opcode) (uint8, error) {
	_, err := registerFilter(fd, op, []cbpf.Instruction{cbpf.Ret(1)}, 0, 255)
	if pe, ok := err.(*PDUSizeError); ok {
		return pe.Kernel, nil
	}
	if err == nil {
		return 0, fmt.Errorf("probe pdu_size of %v: the kernel accepted pdu_size 255 (the probe expects EMSGSIZE): the filter is now registered on a throwaway ring", op)
	}
	if op != abi.OpNop && errors.Is(err, unix.EINVAL) {
		// Tell an opcode this kernel does not know from a kernel
		// without filters: NOP always exists.
		if _, nerr := registerFilter(fd, abi.OpNop, []cbpf.Instruction{cbpf.Ret(1)}, 0, 255); errors.As(nerr, new(*PDUSizeError)) {
			return 0, &Error{Op: fmt.Sprintf("probe pdu_size of opcode %d", op), Errno: unix.EINVAL,
				Advice: "this kernel does not know the opcode (it is at or above the kernel's IORING_OP_LAST)"}
		}
	}
	return 0, noFilters(err)
}

// noFilters marks an EINVAL from a filter registration with a valid
// program as the kernel lacking filters.
func noFilters(err error) error {
	if e, ok := err.(*Error); ok && e.Errno == unix.EINVAL {
		rel, _ := Release()
		return &Error{Op: e.Op, Errno: e.Errno, cause: ErrNoFilters,
			Advice: fmt.Sprintf("%v (running %s)", ErrNoFilters, rel)}
	}
	return err
}

// PDUSizes returns ProbePDUSize for every opcode below abi.OpLast, using
// one throwaway ring.
func PDUSizes() ([abi.OpLast]uint8, error) {
	var out [abi.OpLast]uint8
	r, err := NewRing(Params{Entries: 1})
	if err != nil {
		return out, err
	}
	defer r.Close()
	for op := range out {
		if out[op], err = probePDUSize(r.fd, abi.Opcode(op)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Supported returns nil if the running kernel has io_uring BPF filters,
// and otherwise an error saying why not: an error wrapping ErrNoFilters
// ("this kernel has no io_uring BPF filters (needs Linux 7.0 with
// CONFIG_IO_URING_BPF)"), or io_uring itself being unavailable.
func Supported() error {
	_, err := ProbePDUSize(abi.OpNop)
	return err
}

// Release returns the running kernel's release string (uname -r).
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", &Error{Op: "uname", Errno: errnoOf(err)}
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Version returns the running kernel's major.minor version.
func Version() (abi.Version, error) {
	rel, err := Release()
	if err != nil {
		return abi.Version{}, err
	}
	return abi.ParseVersion(rel)
}

// RegisterTaskRestrictions registers io_uring restrictions on the calling
// thread (IORING_REGISTER_RESTRICTIONS with fd -1, Linux 7.0): rings it
// and its later children create allow only the listed SQE opcodes, SQE
// flags and register opcodes. A task can register restrictions once, and
// only before any task filter; it needs no_new_privs or CAP_SYS_ADMIN.
func RegisterTaskRestrictions(rs []abi.Restriction) error {
	b := abi.EncodeTaskRestrictions(0, rs, binary.NativeEndian)
	errno := register(-1, abi.RegisterRestrictions, unsafe.Pointer(&b[0]), 1)
	runtime.KeepAlive(b)
	if errno != 0 {
		return errRegister("register io_uring restrictions on task", errno, abi.RegisterRestrictions, true)
	}
	return nil
}

// TaskRestricted reports whether the calling thread already has io_uring
// task restrictions or task filters. It asks the kernel with an
// intentionally incomplete task-restriction registration, which changes
// nothing: the kernel answers EPERM when the task is already restricted
// before it looks at the argument, or, on Linux 7.3, EACCES when the
// task's restriction set does not allow REGISTER_RESTRICTIONS (counted as
// restricted when no_new_privs is set, which rules out the other cause of
// EACCES). Linux exposes no other way to see it (nothing in /proc). On
// kernels without task restrictions it returns false and an error wrapping
// ErrNoFilters.
func TaskRestricted() (bool, error) {
	switch errno := register(-1, abi.RegisterRestrictions, nil, 0); errno {
	case unix.EPERM:
		return true, nil
	case unix.EACCES:
		// Either not restricted and without no_new_privs (or
		// CAP_SYS_ADMIN), or (Linux 7.3) restricted by a set whose
		// register allow list lacks REGISTER_RESTRICTIONS: 7.3 checks
		// the list first. With no_new_privs set only the second can
		// be. (ringfence's own sets always list the operation.)
		if nnp, err := NoNewPrivs(); err == nil && nnp {
			return true, nil
		}
		return false, nil
	case unix.EINVAL:
		// nr_args 0 is refused after both checks on Linux 7.x; 6.x refuses
		// the blind opcode with EINVAL too, so tell them apart.
		if err := Supported(); err != nil {
			return false, err
		}
		return false, nil
	default:
		return false, errRegister("probe task restrictions", errno, abi.RegisterRestrictions, true)
	}
}

// RegisterRestrictions registers restrictions on the ring, which must have
// been created with SetupRDisabled and not enabled yet; call Enable next.
func (r *Ring) RegisterRestrictions(rs []abi.Restriction) error {
	b := make([]byte, abi.RestrictionSize*max(len(rs), 1))
	for i, x := range rs {
		e := x.Encode(binary.NativeEndian)
		copy(b[i*abi.RestrictionSize:], e[:])
	}
	errno := register(r.fd, abi.RegisterRestrictions, unsafe.Pointer(&b[0]), len(rs))
	runtime.KeepAlive(b)
	if errno != 0 {
		return errRegister("register io_uring restrictions on ring", errno, abi.RegisterRestrictions, false)
	}
	return nil
}

// Enable starts a ring created with SetupRDisabled
// (IORING_REGISTER_ENABLE_RINGS); its restrictions apply from now on.
func (r *Ring) Enable() error {
	if errno := register(r.fd, abi.RegisterEnableRings, nil, 0); errno != 0 {
		return errRegister("enable io_uring ring", errno, abi.RegisterEnableRings, false)
	}
	return nil
}

// RegisterFilter registers a filter on the ring; see RegisterRingFilter.
func (r *Ring) RegisterFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error {
	return RegisterRingFilter(r.fd, op, prog, flags, pduSize)
}

// ProbeOpcodes asks the kernel which io_uring opcodes it supports, on a
// throwaway ring.
func ProbeOpcodes() (Probe, error) {
	r, err := NewRing(Params{Entries: 1})
	if err != nil {
		return Probe{}, err
	}
	defer r.Close()
	return r.ProbeOpcodes()
}

// ProbeOpcodes asks the kernel which opcodes it supports, through r.
func (r *Ring) ProbeOpcodes() (Probe, error) {
	const n = 256
	b := make([]byte, 16+8*n)
	errno := register(r.fd, abi.RegisterProbe, unsafe.Pointer(&b[0]), n)
	runtime.KeepAlive(b)
	if errno != 0 {
		return Probe{}, errRegister("probe io_uring opcodes", errno, abi.RegisterProbe, false)
	}
	p := Probe{LastOp: abi.Opcode(b[0])}
	for i := 0; i < int(b[1]); i++ {
		op := b[16+8*i:]
		if binary.NativeEndian.Uint16(op[2:])&1 != 0 { // IO_URING_OP_SUPPORTED
			p.Supported = append(p.Supported, abi.Opcode(op[0]))
		}
	}
	return p, nil
}

// SetNoNewPrivs sets no_new_privs on every thread of the process
// (prctl(PR_SET_NO_NEW_PRIVS)); it cannot be unset. Task registrations
// need it unless the caller has CAP_SYS_ADMIN.
func SetNoNewPrivs() error {
	_, _, errno := syscallAllThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if errno != 0 {
		return &Error{Op: "prctl(PR_SET_NO_NEW_PRIVS)", Errno: errno}
	}
	// A seccomp filter can answer the prctl with success (errno 0)
	// without running it; it cannot make PR_GET_NO_NEW_PRIVS return 1.
	if nnp, err := NoNewPrivs(); err != nil || !nnp {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS) reported success, but no_new_privs is not set (%v): a seccomp filter outside ringfence answers for the kernel", err)
	}
	return nil
}

// NoNewPrivs reports whether no_new_privs is set on the calling thread.
func NoNewPrivs() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return false, &Error{Op: "prctl(PR_GET_NO_NEW_PRIVS)", Errno: errnoOf(err)}
	}
	return v == 1, nil
}
