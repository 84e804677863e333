package kernel

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// syscallAllThreads runs a system call on every thread of the process
// (syscall.AllThreadsSyscall), or on the calling thread only where the Go
// runtime cannot do that (programs built with cgo).
func syscallAllThreads(trap, a1, a2, a3 uintptr) (r1, r2 uintptr, errno unix.Errno) {
	r1, r2, e := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if e == syscall.ENOTSUP {
		r1, r2, e = syscall.RawSyscall(trap, a1, a2, a3)
	}
	return r1, r2, e
}
