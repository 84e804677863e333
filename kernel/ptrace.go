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

// capSysPtrace is CAP_SYS_PTRACE's bit in the capability sets.
const capSysPtrace = 19

// statusValue returns the value of the line "name:" in the text of
// /proc/PID/status, without surrounding blanks.
func statusValue(status, name string) (string, bool) {
	for _, line := range strings.Split(status, "\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && n == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// statusCaps reads the effective and ambient capability sets (CapEff,
// CapAmb) from the text of /proc/PID/status.
func statusCaps(status string) (eff, amb uint64, err error) {
	var sets [2]uint64
	for i, name := range []string{"CapEff", "CapAmb"} {
		v, ok := statusValue(status, name)
		if !ok {
			return 0, 0, fmt.Errorf("read capabilities: no %s line", name)
		}
		if sets[i], err = strconv.ParseUint(v, 16, 64); err != nil {
			return 0, 0, fmt.Errorf("read capabilities: %s is %q", name, v)
		}
	}
	return sets[0], sets[1], nil
}

// PtraceWarning returns a warning when a confined program may ptrace
// processes that are not its descendants, and "" otherwise: under Yama
// scope 0 or without Yama (any process of its user), and below scope 3
// when it runs as root or holds CAP_SYS_PTRACE in its effective or
// ambient set (any process). Under ringfence run such a program can take
// over an unconfined process and submit io_uring requests through it.
func PtraceWarning() string {
	scope, err := PtraceScope()
	status, serr := os.ReadFile("/proc/self/status")
	var eff, amb uint64
	if serr == nil {
		eff, amb, serr = statusCaps(string(status))
	}
	return ptraceWarning(scope, err, os.Geteuid(), eff|amb, serr)
}

// ptraceWarning is PtraceWarning for a Yama scope (or the error reading
// it), an effective user id and the capabilities the program may hold
// (or the error reading them).
func ptraceWarning(scope int, scopeErr error, euid int, caps uint64, capsErr error) string {
	const tail = "and use their io_uring rings through them (pidfd_getfd is refused, ptrace and /proc/PID/mem are not)"
	switch {
	case scopeErr != nil:
		return fmt.Sprintf("cannot tell whether the program may ptrace other processes of its user (%v)", scopeErr)
	case scope < 0:
		return "this kernel has no Yama ptrace scope: the program may ptrace every other process of its user " + tail + "; run it as a user of its own"
	case scope >= 3:
		return ""
	case euid == 0:
		return fmt.Sprintf("running as root (kernel.yama.ptrace_scope %d): with CAP_SYS_PTRACE the program may ptrace every process %s; run it as a user of its own", scope, tail)
	case capsErr != nil:
		return fmt.Sprintf("cannot tell whether the program holds CAP_SYS_PTRACE (%v)", capsErr)
	case caps&(1<<capSysPtrace) != 0:
		return fmt.Sprintf("the program holds CAP_SYS_PTRACE (kernel.yama.ptrace_scope %d): it may ptrace every process %s; drop the capability", scope, tail)
	case scope == 0:
		return "kernel.yama.ptrace_scope is 0: the program may ptrace every other process of its user " + tail + "; set it to 1 or more, or run the program as a user of its own"
	}
	return ""
}
