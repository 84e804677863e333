package escape

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
)

// needFilters skips on the host and on kernels without io_uring filters
// (6.19, where run refuses and internal/cli tests that).
func needFilters(t *testing.T) {
	t.Helper()
	vmtest.Require(t)
	if err := kernel.Supported(); err != nil {
		if strings.HasPrefix(vmtest.Release(), "7.") {
			t.Fatalf("Linux %s should have io_uring filters: %v", vmtest.Release(), err)
		}
		t.Skipf("Linux %s has no io_uring filters: %v", vmtest.Release(), err)
	}
}

// dropsAtExec says whether the booted kernel is one the matrix knows to
// drop task filters at execve once a thread used io_uring (Debian's
// 7.0.13). The tests know the matrix; ringfence itself finds out by
// behaviour.
func dropsAtExec() bool { return strings.HasPrefix(vmtest.Release(), "7.0.") }

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// self runs this test binary with args and returns what it did.
func self(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", args, err)
	}
	return result{c.ProcessState.ExitCode(), out.String(), errb.String()}
}

// runFlags are the flags every attack but the exec-drop one runs with: on
// a kernel that drops filters at execve, run refuses without
// --allow-exec-drop, and these attacks do not exec.
func runFlags() []string {
	if dropsAtExec() {
		return []string{"--allow-exec-drop"}
	}
	return nil
}

// attack runs "ringfence run FLAGS -- <self> role ROLE ARGS".
func attack(t *testing.T, flags []string, role string, args ...string) result {
	t.Helper()
	argv := append([]string{"ringfence", "run"}, runFlags()...)
	argv = append(append(argv, flags...), "--", os.Args[0], "role", role)
	return self(t, nil, append(argv, args...)...)
}

// policyFile writes a policy to a temporary file.
func policyFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantHeld(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != held || strings.Contains(r.stdout, "ESCAPED") {
		t.Errorf("%s: the attack was not refused:\n%v", what, r)
	}
}

func wantEscaped(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != escaped {
		t.Errorf("%s: want the attack to work (showing the hole is real), got:\n%v", what, r)
	}
}

// TestExecDrop: a confined program creates a ring on its thread and
// executes a program, which on Linux 7.0 without the kernel fix comes out
// with no task filters. run must refuse such a kernel, naming the fix;
// --allow-exec-drop runs anyway (and then the attack works: the hole is
// real), with a warning. Kernels with the fix run the program, and the
// attack fails.
func TestExecDrop(t *testing.T) {
	needFilters(t)
	err := ringfence.ExecKeepsFilters()
	if dropsAtExec() != errors.Is(err, ringfence.ErrExecDropsFilters) || (!dropsAtExec() && err != nil) {
		t.Fatalf("ExecKeepsFilters on %s: %v", vmtest.Release(), err)
	}
	r := self(t, nil, "ringfence", "run", "--profile", "deny-all", "--", os.Args[0], "role", "exec-drop")
	if dropsAtExec() {
		if r.code != 125 || !strings.Contains(r.stderr, ringfence.KernelFixExecDrop) || strings.Contains(r.stdout, "ESCAPED") {
			t.Errorf("run on a kernel that drops filters at execve: want exit 125 naming %q:\n%v", ringfence.KernelFixExecDrop, r)
		}
	} else {
		wantHeld(t, "run deny-all, ring then execve", r)
	}
	r = self(t, nil, "ringfence", "run", "--allow-exec-drop", "--profile", "deny-all", "--", os.Args[0], "role", "exec-drop")
	if dropsAtExec() {
		wantEscaped(t, "--allow-exec-drop on a dropping kernel", r)
		if !strings.Contains(r.stderr, "warning: UNSAFE") {
			t.Errorf("--allow-exec-drop: no loud warning:\n%v", r)
		}
	} else {
		wantHeld(t, "--allow-exec-drop on a kernel with the fix", r)
	}
}

// TestRegisterSyncCancel: IORING_REGISTER_SYNC_CANCEL is not a request, so
// no filter sees it; the register section (task restrictions) refuses it.
// A policy without the section shows the attack.
func TestRegisterSyncCancel(t *testing.T) {
	needFilters(t)
	wantHeld(t, "deny-all", attack(t, []string{"--profile", "deny-all"}, "sync-cancel"))
	wantHeld(t, "network-server", attack(t, []string{"--policy", policyFile(t, "version: 1\ndefault: allow\nregister: {allow: [REGISTER_PROBE]}\n")}, "sync-cancel"))
	wantEscaped(t, "no register section", attack(t, []string{"--policy", policyFile(t, "version: 1\ndefault: deny\n")}, "sync-cancel"))
}

// TestBlindSendMsgRing: io_uring_register(-1, IORING_REGISTER_SEND_MSG_RING)
// posts a CQE without a ring; Linux 7.0 to 7.2 do not check it against
// task restrictions, so the companion seccomp filter refuses it there.
func TestBlindSendMsgRing(t *testing.T) {
	needFilters(t)
	for _, form := range []string{"plain", "registered-flag"} {
		wantHeld(t, "deny-all "+form, attack(t, []string{"--profile", "deny-all"}, "send-msg-ring", form))
		wantEscaped(t, "no register section "+form, attack(t, []string{"--policy", policyFile(t, "version: 1\ndefault: deny\n")}, "send-msg-ring", form))
	}
	// The default profile allows MSG_RING, and so the register form.
	wantEscaped(t, "default profile", attack(t, []string{"--profile", "default"}, "send-msg-ring"))
}

// TestFakeProc: a launcher hides an unfiltered ring from --ring-fds behind
// a tmpfs mounted over /proc in its own mount namespace; run must refuse
// to trust that /proc instead of passing the ring on.
func TestFakeProc(t *testing.T) {
	needFilters(t)
	for _, mode := range []string{"refuse", "close"} {
		args := append([]string{"role", "fake-proc-launch"}, runFlags()...)
		r := self(t, nil, append(args, "--ring-fds="+mode, "--profile", "deny-all")...)
		if r.code != 125 || !strings.Contains(r.stderr, "not on procfs") || strings.Contains(r.stdout, "ESCAPED") {
			t.Errorf("--ring-fds=%s under a fake /proc: want exit 125 and \"not on procfs\":\n%v", mode, r)
		}
	}
}

// TestPidfdGetfd: a confined program that may ptrace a same-user process
// (here: root, CAP_SYS_PTRACE) takes that process's ring with pidfd_getfd;
// the companion seccomp filter refuses the call.
func TestPidfdGetfd(t *testing.T) {
	needFilters(t)
	pid, fd, _ := startVictim(t)
	wantHeld(t, "deny-all", attack(t, []string{"--profile", "deny-all"}, "pidfd-getfd", pid, strconv.Itoa(fd)))
	wantHeld(t, "default", attack(t, []string{"--profile", "default"}, "pidfd-getfd", pid, strconv.Itoa(fd)))
	// Unconfined, the same process takes the ring: the attack is real.
	wantEscaped(t, "unconfined", self(t, nil, "role", "pidfd-getfd", pid, strconv.Itoa(fd)))
}

// startVictim starts an unconfined process holding a ring and a pipe
// (role victim), which runs until the test ends, and returns its pid and
// the two descriptors.
func startVictim(t *testing.T) (pid string, ringFD, pipeFD int) {
	t.Helper()
	pr, pw := io.Pipe()
	victim := exec.Command(os.Args[0], "role", "victim")
	victim.Stdin = pr
	out, err := victim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); victim.Wait() })
	if _, err := fmt.Fscan(out, &ringFD, &pipeFD); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(victim.Process.Pid), ringFD, pipeFD
}

// TestLoosenFromInside (held before, kept): a confined program cannot
// register a second, looser task restriction set or clear no_new_privs,
// and its requests stay denied.
func TestLoosenFromInside(t *testing.T) {
	needFilters(t)
	wantHeld(t, "deny-all", attack(t, []string{"--profile", "deny-all"}, "restrict-again"))
}

// TestNamespaces (held before, kept): a confined program that makes new
// user (root inside), network, mount and PID namespaces is still
// confined there.
func TestNamespaces(t *testing.T) {
	needFilters(t)
	wantHeld(t, "deny-all in new namespaces", attack(t, []string{"--profile", "deny-all"}, "namespaces"))
}

// TestNestedRun: "ringfence run" inside "ringfence run". The inner run
// cannot register its own task restriction set (the kernel takes one per
// task); it warns, and its register section holds through the companion
// seccomp filter: the inner deny-all refuses REGISTER_PROBE, which the
// outer default allows, and its filters deny requests.
func TestNestedRun(t *testing.T) {
	needFilters(t)
	nested := func(role ...string) result {
		argv := append([]string{"ringfence", "run"}, runFlags()...)
		argv = append(argv, "--profile", "default", "--", os.Args[0], "ringfence", "run")
		argv = append(argv, runFlags()...)
		argv = append(argv, "--profile", "deny-all", "--", os.Args[0], "role")
		return self(t, nil, append(argv, role...)...)
	}
	r := nested("register-ops", "REGISTER_PROBE", "REGISTER_PERSONALITY")
	if r.code != held || !strings.Contains(r.stderr, "enforced by the companion seccomp filter") ||
		!strings.Contains(r.stdout, fmt.Sprintf("REGISTER_PROBE %d", int(syscall.EACCES))) ||
		!strings.Contains(r.stdout, fmt.Sprintf("REGISTER_PERSONALITY %d", int(syscall.EACCES))) {
		t.Errorf("nested deny-all register operations:\n%v", r)
	}
	wantHeld(t, "nested deny-all requests", nested("requests"))
}

// TestEmptyPolicyRuns: a policy that registers nothing (default allow, no
// rules, no register section) runs its program; run used to refuse it
// with a false "dropped at execve".
func TestEmptyPolicyRuns(t *testing.T) {
	needFilters(t)
	r := attack(t, []string{"--policy", policyFile(t, "version: 1\ndefault: allow\n")}, "requests")
	if r.code != escaped || strings.Contains(r.stderr, "was not run") {
		t.Errorf("default-allow policy: want the program to run and its requests to pass:\n%v", r)
	}
}

// TestProbeReportsExecDrop: probe says whether the kernel keeps task
// filters across execve after a thread used io_uring, found by behaviour,
// and warns where run refuses; probe and run warn about ptrace.
func TestProbeReportsExecDrop(t *testing.T) {
	needFilters(t)
	r := self(t, nil, "ringfence", "probe", "--json")
	var rep struct {
		ExecKeepsFilters string   `json:"exec_keeps_filters"`
		PtraceScope      string   `json:"ptrace_scope"`
		Warnings         []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("probe --json: %v\n%v", err, r)
	}
	if dropsAtExec() {
		if !strings.HasPrefix(rep.ExecKeepsFilters, "no: ") || !strings.Contains(rep.ExecKeepsFilters, ringfence.KernelFixExecDrop) ||
			!strings.Contains(strings.Join(rep.Warnings, "\n"), "run refuses this kernel") {
			t.Errorf("probe on %s: exec_keeps_filters %q, warnings %q", vmtest.Release(), rep.ExecKeepsFilters, rep.Warnings)
		}
	} else if rep.ExecKeepsFilters != "yes" {
		t.Errorf("probe on %s: exec_keeps_filters %q, want yes", vmtest.Release(), rep.ExecKeepsFilters)
	}
	// The VM runs everything as root, who may ptrace any process: both
	// probe and run must say so.
	if os.Geteuid() != 0 {
		t.Fatal("the escape suite expects to run as root in the VM")
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "ptrace") {
		t.Errorf("probe as root (ptrace scope %s): no ptrace warning in %q", rep.PtraceScope, rep.Warnings)
	}
	run := attack(t, []string{"--profile", "deny-all"}, "requests")
	if !strings.Contains(run.stderr, "warning: running as root") && !strings.Contains(run.stderr, "warning: this kernel has no Yama") {
		t.Errorf("run as root: no ptrace warning:\n%v", run)
	}
	wantHeld(t, "deny-all requests", run)
}

// TestProfileRegisterOps: what each profile's comment says about register
// operations holds on the kernel: personalities and zero-copy receive
// queues are refused (EACCES) under the profiles that extend base, every
// operation under deny-all, and probing and file registration are not.
func TestProfileRegisterOps(t *testing.T) {
	needFilters(t)
	denied := []string{"REGISTER_PERSONALITY", "REGISTER_ZCRX_IFQ", "REGISTER_ZCRX_CTRL"}
	allowed := []string{"REGISTER_PROBE", "REGISTER_FILES", "REGISTER_BUFFERS", "REGISTER_RING_FDS", "REGISTER_SYNC_CANCEL"}
	for _, profile := range []string{"default", "network-server", "storage", "base", "deny-all"} {
		r := attack(t, []string{"--profile", profile}, "register-ops", append(append([]string{}, denied...), allowed...)...)
		if r.code != held {
			t.Fatalf("%s: %v", profile, r)
		}
		got := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var name string
			var errno int
			if _, err := fmt.Sscan(line, &name, &errno); err != nil {
				t.Fatalf("%s: %q: %v", profile, line, err)
			}
			got[name] = errno
		}
		for _, op := range append(append([]string{}, denied...), allowed...) {
			if _, ok := got[op]; !ok {
				t.Fatalf("%s: the role reported nothing for %s:\n%v", profile, op, r)
			}
		}
		for _, op := range denied {
			if got[op] != int(syscall.EACCES) {
				t.Errorf("%s: %s gave errno %d, want EACCES", profile, op, got[op])
			}
		}
		for _, op := range allowed {
			refused := got[op] == int(syscall.EACCES)
			if refused != (profile == "deny-all") {
				t.Errorf("%s: %s gave errno %d (EACCES is %d)", profile, op, got[op], int(syscall.EACCES))
			}
		}
	}
}

// TestSCMRightsRing (held before, kept): an unconfined process cannot hand
// its ring to a confined one over a Unix socket, because the kernel
// refuses to pass io_uring descriptors with SCM_RIGHTS; were it to accept,
// the confined program would receive a ring no filter covers.
func TestSCMRightsRing(t *testing.T) {
	needFilters(t)
	r, err := kernel.NewRing(kernel.Params{Entries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	err = syscall.Sendmsg(fds[0], []byte{0}, syscall.UnixRights(r.FD()), nil, 0)
	if err == nil {
		t.Fatalf("the kernel passed an io_uring descriptor over SCM_RIGHTS: an unconfined process can hand a confined one an unfiltered ring")
	}
	if err != syscall.EINVAL {
		t.Errorf("sendmsg with an io_uring descriptor: got %v, want EINVAL", err)
	}
}
