package kernel

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
)

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
