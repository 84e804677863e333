package kernel

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/cbpf"
)

// InstallSeccomp installs prog as a seccomp filter on the calling thread
// (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)); the thread's later children
// and the programs it executes inherit it. It needs no_new_privs or
// CAP_SYS_ADMIN. Package seccomp builds the programs ringfence installs.
//
// It checks that the thread's count of seccomp filters (Seccomp_filters in
// /proc/thread-self/status, verified to be procfs) went up by one: a
// seccomp filter already installed can make the prctl report success
// without installing anything (SECCOMP_RET_ERRNO with errno 0).
func InstallSeccomp(prog []cbpf.Instruction) error {
	if len(prog) == 0 {
		return &Error{Op: "install seccomp filter", Errno: unix.EINVAL, Advice: "empty program"}
	}
	before, err := seccompFilters()
	if err != nil {
		return err
	}
	if err := installSeccomp(prog); err != nil {
		return err
	}
	after, err := seccompFilters()
	if err != nil {
		return err
	}
	if after != before+1 {
		return fmt.Errorf("install seccomp filter: the thread has %d seccomp filters after installing one, had %d: the installation did not reach the kernel (a seccomp filter outside ringfence answers for it)", after, before)
	}
	return nil
}

// seccompFilters returns the calling thread's number of seccomp filters,
// read from /proc/thread-self/status after checking that /proc is procfs
// showing this process (VerifyProcFD) and that the file is on procfs and
// describes this thread.
func seccompFilters() (int, error) {
	if err := VerifyProcFD("/proc/self/fd"); err != nil {
		return 0, fmt.Errorf("count seccomp filters: %w", err)
	}
	const file = "/proc/thread-self/status"
	var st unix.Statfs_t
	if err := unix.Statfs(file, &st); err != nil {
		return 0, &Error{Op: "statfs " + file, Errno: errnoOf(err)}
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return 0, fmt.Errorf("count seccomp filters: %s is not on procfs (file-system type %#x)", file, st.Type)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("count seccomp filters: %w", err)
	}
	if pid, _ := statusValue(string(b), "Pid"); pid != strconv.Itoa(unix.Gettid()) {
		return 0, fmt.Errorf("count seccomp filters: %s describes thread %s, not this thread %d", file, pid, unix.Gettid())
	}
	v, ok := statusValue(string(b), "Seccomp_filters")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		return 0, fmt.Errorf("count seccomp filters: %s has no Seccomp_filters count (Linux 5.9+)", file)
	}
	return n, nil
}

// installSeccomp is prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog).
func installSeccomp(prog []cbpf.Instruction) error {
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
