package kernel

import (
	"encoding/binary"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/cbpf"
)

// InstallSeccomp installs prog as a seccomp filter on the calling thread
// (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)); the thread's later children
// and the programs it executes inherit it. It needs no_new_privs or
// CAP_SYS_ADMIN. Package seccomp builds the programs ringfence installs.
func InstallSeccomp(prog []cbpf.Instruction) error {
	if len(prog) == 0 {
		return &Error{Op: "install seccomp filter", Errno: unix.EINVAL, Advice: "empty program"}
	}
	raw := cbpf.Encode(prog, binary.NativeEndian)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	_, _, errno := unix.Syscall6(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0, 0)
	runtime.KeepAlive(raw)
	if errno != 0 {
		e := &Error{Op: "install seccomp filter", Errno: errno}
		switch errno {
		case unix.EACCES:
			e.Advice = "installing a seccomp filter needs no_new_privs or CAP_SYS_ADMIN"
		case unix.EINVAL:
			e.Advice = "the kernel refused the program, or has no seccomp filters (CONFIG_SECCOMP_FILTER)"
		}
		return e
	}
	return nil
}
