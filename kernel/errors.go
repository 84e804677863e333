package kernel

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
)

// ErrNoFilters is wrapped by errors from kernels that have no io_uring BPF
// filters (before Linux 7.0, or built without CONFIG_IO_URING_BPF).
var ErrNoFilters = errors.New("this kernel has no io_uring BPF filters (needs Linux 7.0 with CONFIG_IO_URING_BPF)")

// Error is a failed system call: which call, the errno, and advice.
// Unwrap returns the errno, and ErrNoFilters too when that is the cause.
type Error struct {
	Op     string     // the call and its subject, e.g. "register BPF filter on task for SOCKET"
	Errno  unix.Errno // the kernel's answer
	Advice string     // what the errno means here and what to do; may be empty
	cause  error      // a sentinel such as ErrNoFilters, or nil
}

// Error returns "Op: errno text: advice".
func (e *Error) Error() string {
	s := e.Op + ": " + e.Errno.Error()
	if e.Advice != "" {
		s += ": " + e.Advice
	}
	return s
}

// Unwrap returns the errno and, when known, the sentinel cause.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Errno, e.cause}
	}
	return []error{e.Errno}
}

// PDUSizeError is the kernel's refusal of a filter's pdu_size (EMSGSIZE):
// the filter asked for more per-opcode data than the kernel has for the
// opcode, or a different size with IO_URING_BPF_FILTER_SZ_STRICT. Kernel
// is the size the kernel wrote back into the registration.
type PDUSizeError struct {
	Op     abi.Opcode
	Asked  uint8 // the pdu_size the filter was registered with
	Kernel uint8 // the kernel's pdu_size for Op, written back by the kernel
	Strict bool  // whether SZ_STRICT was set
}

// Error explains the mismatch.
func (e *PDUSizeError) Error() string {
	how := "larger than"
	if e.Strict && e.Asked < e.Kernel {
		how = "with SZ_STRICT, different from"
	}
	return fmt.Sprintf("register BPF filter for %v: pdu_size %d is %s the kernel's %d for this opcode: "+
		"compile the filter for this kernel (its data for %v is %d bytes)", e.Op, e.Asked, how, e.Kernel, e.Op, e.Kernel)
}

// Unwrap returns EMSGSIZE.
func (e *PDUSizeError) Unwrap() error { return unix.EMSGSIZE }

// errSetup turns an io_uring_setup failure into an *Error with advice.
func errSetup(errno unix.Errno, flags uint32) error {
	e := &Error{Op: "io_uring_setup", Errno: errno}
	switch errno {
	case unix.ENOSYS:
		e.Advice = "this kernel has no io_uring (CONFIG_IO_URING is off)"
	case unix.EPERM:
		e.Advice = "io_uring is disabled for this process (sysctl kernel.io_uring_disabled is 2, or 1 and the caller is not in kernel.io_uring_group), or a seccomp filter forbids it"
	case unix.EACCES:
		e.Advice = "io_uring_setup was denied (sysctl kernel.io_uring_disabled, an LSM or seccomp policy)"
	case unix.ENOMEM:
		e.Advice = "the kernel could not allocate the ring (RLIMIT_MEMLOCK or memory cgroup limit)"
	case unix.EMFILE, unix.ENFILE:
		e.Advice = "too many open files"
	case unix.EINVAL:
		e.Advice = fmt.Sprintf("the kernel refused the ring parameters (setup flags %#x)", flags)
	}
	return e
}

// errRegister turns an io_uring_register failure into an *Error with
// advice. task is true for registrations on the calling task (fd -1).
func errRegister(op string, errno unix.Errno, regOp int, task bool) error {
	e := &Error{Op: op, Errno: errno}
	switch {
	case errno == unix.EINVAL && regOp == abi.RegisterBPFFilter:
		e.Advice = "the kernel refused the filter: the program breaks a classic-BPF or io_uring rule (check it with cbpf.Check), or the opcode, flags or reserved fields are invalid, " +
			"or " + ErrNoFilters.Error()
	case errno == unix.EINVAL && regOp == abi.RegisterRestrictions && task:
		e.Advice = "the kernel refused the task restrictions: an invalid restriction, or the kernel has no task restrictions (needs Linux 7.0)"
	case errno == unix.EINVAL && regOp == abi.RegisterRestrictions:
		e.Advice = "the kernel refused the restrictions: an opcode or register opcode out of range"
	case errno == unix.EACCES && task:
		e.Advice = "registering on the task needs no_new_privs (set it with SetNoNewPrivs, or prctl(PR_SET_NO_NEW_PRIVS)) or CAP_SYS_ADMIN"
	case errno == unix.EACCES:
		e.Advice = "the ring's restrictions do not allow this register operation"
	case errno == unix.EPERM && regOp == abi.RegisterRestrictions && task:
		e.Advice = "the task already has io_uring restrictions or filters (task restrictions can be set once, before any task filter)"
	case errno == unix.EBUSY && regOp == abi.RegisterRestrictions:
		e.Advice = "the ring already has restrictions (they can be registered once)"
	case errno == unix.EBADFD:
		e.Advice = "the ring is not disabled: create it with IORING_SETUP_R_DISABLED to register restrictions, and enable it once"
	case errno == unix.EBADF || errno == unix.EOPNOTSUPP:
		e.Advice = "the file descriptor is not an io_uring ring"
	case errno == unix.EFAULT:
		e.Advice = "the kernel could not read the argument (a bad pointer: this is a ringfence bug)"
	case errno == unix.ENOMEM:
		e.Advice = "the kernel is out of memory for filters (memory cgroup limit)"
	}
	return e
}
