package kernel

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ringfence/ringfence/abi"
)

// ErrNoFilters is wrapped by errors from kernels that have no io_uring BPF
// filters (before Linux 7.0, or built without CONFIG_IO_URING_BPF).
var ErrNoFilters = errors.New("this kernel has no io_uring BPF filters (needs Linux 7.0 with CONFIG_IO_URING_BPF)")

// ErrNeedsLinux is what every system call of this package returns on
// systems other than Linux, which have no io_uring.
var ErrNeedsLinux = errors.New("needs Linux: io_uring and its filters exist only there")

// Error is a failed system call: which call, the errno, and advice.
// Unwrap returns the errno, and ErrNoFilters too when that is the cause.
type Error struct {
	Op     string        // the call and its subject, e.g. "register BPF filter on task for SOCKET"
	Errno  syscall.Errno // the kernel's answer
	Advice string        // what the errno means here and what to do; may be empty
	cause  error         // a sentinel such as ErrNoFilters, or nil
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
func (e *PDUSizeError) Unwrap() error { return syscall.EMSGSIZE }
