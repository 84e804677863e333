package kernel

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ptraceScopeFile is Yama's setting (kernel.yama.ptrace_scope).
const ptraceScopeFile = "/proc/sys/kernel/yama/ptrace_scope"

// PtraceScope returns Yama's ptrace scope (0: any process of the same user
// may be ptraced, the classic rule; 1: only descendants; 2: only with
// CAP_SYS_PTRACE; 3: none), or -1 when the kernel has no Yama, which means
// the classic rule. ptrace access also decides pidfd_getfd(2) and
// /proc/PID/mem, with which a confined program can take over an unconfined
// process and its io_uring rings.
func PtraceScope() (int, error) {
	b, err := os.ReadFile(ptraceScopeFile)
	if os.IsNotExist(err) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read ptrace scope: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read ptrace scope: %s holds %q", ptraceScopeFile, b)
	}
	return n, nil
}

// PtraceWarning returns a warning when a confined program may ptrace the
// processes of its user that are not its descendants (Yama scope 0 or no
// Yama), and "" otherwise. Under ringfence run such a program can take
// over an unconfined process and submit io_uring requests through it.
func PtraceWarning() string {
	scope, err := PtraceScope()
	switch {
	case err != nil:
		return fmt.Sprintf("cannot tell whether the program may ptrace other processes of its user (%v)", err)
	case scope < 0:
		return "this kernel has no Yama ptrace scope: the program may ptrace every other process of its user and use their io_uring rings through them (pidfd_getfd is refused, ptrace and /proc/PID/mem are not); run it as a user of its own"
	case scope < 3 && os.Geteuid() == 0:
		return fmt.Sprintf("running as root (kernel.yama.ptrace_scope %d): with CAP_SYS_PTRACE the program may ptrace every process and use their io_uring rings through them (pidfd_getfd is refused, ptrace and /proc/PID/mem are not); run it as a user of its own", scope)
	case scope == 0:
		return "kernel.yama.ptrace_scope is 0: the program may ptrace every other process of its user and use their io_uring rings through them (pidfd_getfd is refused, ptrace and /proc/PID/mem are not); set it to 1 or more, or run the program as a user of its own"
	}
	return ""
}
