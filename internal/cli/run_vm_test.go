package cli

// Kernel tests of "ringfence run", run inside the VM harness (RINGFENCE_VM=1)
// on every kernel of the matrix. The test binary plays every part by
// re-executing itself through TestHelperProcess: "ringfence" (the CLI), the
// confined program (the io_uring probe) and the holder of an inherited ring.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/uringprobe"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// helperMark marks a re-executed test binary that must act as a helper.
const helperMark = "RINGFENCE_TEST_HELPER"

// helperArgv returns the argv that runs this test binary as a helper:
// role is "main" (ringfence's CLI), "probe" or "ringfds".
func helperArgv(role string, args ...string) []string {
	return append([]string{os.Args[0], "-test.run=^TestHelperProcess$", "--", role}, args...)
}

// helperCmd returns a command that runs this test binary as a helper.
func helperCmd(role string, args ...string) *exec.Cmd {
	argv := helperArgv(role, args...)
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), helperMark+"=1")
	return c
}

// runArgs returns "run ARGS", with --allow-exec-drop first on a kernel that
// drops task filters at execve once a thread used io_uring (Linux 7.0
// without the fix), where run refuses by default: these tests check what
// run does once it runs a program, and their programs do not try that
// escape (internal/escape does).
func runArgs(args ...string) []string {
	if errors.Is(ringfence.ExecKeepsFilters(), ringfence.ErrExecDropsFilters) {
		return append([]string{"run", "--allow-exec-drop"}, args...)
	}
	return append([]string{"run"}, args...)
}

// TestHelperProcess is not a test: it is the entry point of the helper
// processes the VM tests start. Without RINGFENCE_TEST_HELPER it returns.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperMark) != "1" {
		return
	}
	args := os.Args
	for len(args) > 0 && args[0] != "--" {
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "helper: no role")
		os.Exit(3)
	}
	role, args := args[1], args[2:]
	os.Exit(helper(role, args))
}

// helperOutput is what the probe helper prints, one JSON line per process
// (the probe, its child, its grandchild).
type helperOutput struct {
	Depth   int                 `json:"depth"`
	Mode    string              `json:"mode"`
	Results []uringprobe.Result `json:"results,omitempty"`
	RingFDs []int               `json:"ring_fds"`
	Error   string              `json:"error,omitempty"`
}

// helperEnv is the environment of a helper playing ringfence: the
// process's streams.
func helperEnv() *env {
	return &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
}

func helper(role string, args []string) int {
	switch role {
	case "main":
		return run(helperEnv(), args)
	case "probe":
		// probe MODE DEPTH: probe, print, then start the next generation.
		mode, _ := uringprobe.ParseMode(args[0])
		depth, _ := strconv.Atoi(args[1])
		out := helperOutput{Depth: depth, Mode: string(mode)}
		out.RingFDs, _ = ringfence.RingFDs()
		res, err := uringprobe.Run(uringprobe.Probes(), mode)
		out.Results = res
		if err != nil {
			out.Error = err.Error()
		}
		b, _ := json.Marshal(out)
		fmt.Printf("%s\n", b)
		if depth > 0 {
			c := helperCmd("probe", args[0], strconv.Itoa(depth-1))
			c.Stdout, c.Stderr = os.Stdout, os.Stderr
			if err := c.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 1
			}
		}
		return 0
	case "submit":
		return submitHelper(args)
	case "cgroup-submit":
		// cgroup-submit DIR SPECS...: join cgroup DIR (if not ""), then
		// submit on rings whose filter denies every SOCKET.
		if args[0] != "" {
			if err := os.WriteFile(args[0]+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return submitHelperWith(args[1:], denySocket)
	case "ringfds":
		fds, err := ringfence.RingFDs()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, _ := json.Marshal(helperOutput{RingFDs: fds})
		fmt.Printf("%s\n", b)
		return 0
	case "badreg":
		// badreg N ARGS...: "ringfence run ARGS" on the real kernel, with
		// registration N sent with a pdu_size the kernel refuses.
		n, _ := strconv.Atoi(args[0])
		return runCommandWith(&badRegKernel{Kernel: ringfence.Host(), bad: n}).main(helperEnv(), args[1:])
	case "restricted":
		// Prints whether this process carries io_uring task filters.
		r, err := kernel.TaskRestricted()
		fmt.Printf("restricted=%v err=%v\n", r, err)
		return 0
	case "applyexec", "ringapplyexec":
		// Applies deny-all to this thread, then execs "restricted";
		// ringapplyexec first uses io_uring on the thread (a ring).
		runtime.LockOSThread()
		if role == "ringapplyexec" {
			r, err := kernel.NewRing(kernel.Params{Entries: 1})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			r.Close()
		}
		p, err := ringfence.Profile("deny-all")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		k, _ := kernel.Version()
		plan, err := ringfence.Compile(p, k)
		if err == nil {
			err = ringfence.ApplyToTask(plan, ringfence.ApplyOptions{AllowExecDrop: true})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		argv := helperArgv("restricted")
		err = kernel.Exec(argv[0], argv, os.Environ())
		fmt.Fprintln(os.Stderr, err)
		return 1
	case "keepring":
		// keepring ROLE ARGS...: create a ring that survives exec, then
		// exec ROLE (main or ringfds).
		r, err := kernel.NewRing(kernel.Params{Entries: 1})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := kernel.SetInheritable(r.FD()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Become ROLE through execve, as a shell or runtime that leaks a
		// ring into "ringfence run" would.
		argv := helperArgv(args[0], args[1:]...)
		err = kernel.Exec(argv[0], argv, os.Environ())
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "helper: unknown role %q\n", role)
	return 3
}

// refusedForExec reports whether "ringfence run" refused because the
// kernel drops task filters at execve, and if so confirms independently
// that it does: a process that applies a policy and execs itself must
// then find itself unfiltered. A refusal on a kernel that keeps the
// filters is a failure.
func refusedForExec(t *testing.T, code int, stdout, stderr string) bool {
	t.Helper()
	if !strings.Contains(stderr, "dropped the io_uring task filters at execve") {
		return false
	}
	if code != exitRunFailed || stdout != "" {
		t.Fatalf("refused, but exit %d and the program printed %q", code, stdout)
	}
	out, errs, c := runHelper(t, helperCmd("applyexec"))
	if c != 0 || !strings.Contains(out, "restricted=false err=<nil>") {
		t.Fatalf("ringfence run refused (filters dropped at execve), but a process that applied a policy and exec'd says %q (exit %d, %s)", out, c, errs)
	}
	return true
}

// needVM skips a test outside the VM harness.
func needVM(t *testing.T) {
	t.Helper()
	vmtest.Require(t)
}

// needFilters skips on kernels without io_uring filters (tested by
// TestRunRefusesWithoutFilters instead).
func needFilters(t *testing.T) {
	t.Helper()
	needVM(t)
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel without io_uring filters: %v", err)
	}
}

// runHelper runs a helper and returns its stdout, stderr and exit status.
func runHelper(t *testing.T, c *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%v: %v", c.Args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

func parseOutputs(t *testing.T, stdout string) []helperOutput {
	t.Helper()
	var outs []helperOutput
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var o helperOutput
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("bad helper output %q: %v", line, err)
		}
		outs = append(outs, o)
	}
	return outs
}

// expected returns what p decides for probe pr on kernel k, and whether
// the kernel's preparation is expected to refuse the request before any
// filter runs.
func expected(p *policy.Policy, pr uringprobe.Probe, mode uringprobe.Mode, k abi.Version) (allow, prepOK bool) {
	q := pr.Req
	q.Flags |= mode.Flags()
	ctx, prepOK := q.Ctx(k)
	req := ringfence.RequestFromCtx(ctx, binary.NativeEndian)
	return p.Decide(req).Allow, prepOK
}

// TestRunProfilesInVM runs the probe under each built-in profile in every
// submission mode, with a child and a grandchild, and compares each
// request's result with the profile's decision and an unfiltered baseline.
func TestRunProfilesInVM(t *testing.T) {
	needFilters(t)
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	probes := uringprobe.Probes()
	modes := []uringprobe.Mode{uringprobe.Plain, uringprobe.SQPoll, uringprobe.Async, uringprobe.Linked}
	baseline := map[uringprobe.Mode][]uringprobe.Result{}
	for _, m := range modes {
		out, errs, code := runHelper(t, helperCmd("probe", string(m), "0"))
		outs := parseOutputs(t, out)
		if code != 0 || len(outs) != 1 || outs[0].Error != "" {
			t.Fatalf("baseline %s: exit %d, %q, stderr %s", m, code, out, errs)
		}
		for _, r := range outs[0].Results {
			if r.Denied() {
				t.Logf("baseline %s: %s fails with EACCES on its own", m, r.Name)
			}
		}
		baseline[m] = outs[0].Results
	}
	for _, name := range profiles.Names() {
		p, err := ringfence.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range modes {
			t.Run(name+"/"+string(m), func(t *testing.T) {
				c := helperCmd("main", append(runArgs("--profile", name, "--"), helperArgv("probe", string(m), "2")...)...)
				out, errs, code := runHelper(t, c)
				if refusedForExec(t, code, out, errs) {
					t.Logf("%v drops task filters at execve: ringfence run refused to start the program, as it must", k)
					return
				}
				if code != 0 {
					t.Fatalf("ringfence run exit %d; stderr:\n%s", code, errs)
				}
				outs := parseOutputs(t, out)
				if len(outs) != 3 {
					t.Fatalf("want 3 generations (program, child, grandchild), got %d:\n%s\n%s", len(outs), out, errs)
				}
				observed, unobservable := 0, 0
				for _, o := range outs {
					if o.Error != "" {
						t.Fatalf("depth %d: %s", o.Depth, o.Error)
					}
					if len(o.Results) != len(probes) {
						t.Fatalf("depth %d: %d results for %d probes", o.Depth, len(o.Results), len(probes))
					}
					nopAllowed, _ := expected(p, uringprobe.Probe{Req: kernel.Request{Op: abi.OpNop}}, uringprobe.Plain, k)
					for i, r := range o.Results {
						base := baseline[m][i]
						allow, prepOK := expected(p, probes[i], m, k)
						gen := [...]string{"grandchild", "child", "program"}[o.Depth]
						switch {
						case m == uringprobe.Linked && !nopAllowed && isPrepError(r.Res) && r.Res == base.Res:
							unobservable++
						case m == uringprobe.Linked && !nopAllowed:
							// The link's head is denied: the request is
							// denied itself or cancelled with its chain.
							if !r.Denied() && r.Res != -int32(syscall.ECANCELED) {
								t.Errorf("%s: %s: got %d, want EACCES or ECANCELED (head NOP denied)", gen, r.Name, r.Res)
							}
							observed++
						case allow:
							if r.Denied() && !base.Denied() {
								t.Errorf("%s: %s: allowed by %s but the kernel said EACCES (baseline %d)", gen, r.Name, name, base.Res)
							}
							observed++
						case r.Denied():
							observed++
						case (!prepOK || isPrepError(base.Res)) && r.Res == base.Res:
							unobservable++ // refused by its preparation before any filter
						default:
							t.Errorf("%s: %s: denied by %s but the kernel returned %d (baseline %d)", gen, r.Name, name, r.Res, base.Res)
						}
					}
				}
				t.Logf("%s %s on %s: %d results match the policy, %d denied requests fail in preparation before filters", name, m, k, observed, unobservable)
			})
		}
	}
}

// TestRunKeyOpsObservable makes sure the probe's requests for the opcodes
// the profiles care most about reach the filters (their preparation
// passes), so TestRunProfilesInVM cannot pass by never testing them.
func TestRunKeyOpsObservable(t *testing.T) {
	needFilters(t)
	c := helperCmd("main", append(runArgs("--profile", "deny-all", "--"), helperArgv("probe", "plain", "0")...)...)
	out, errs, code := runHelper(t, c)
	if refusedForExec(t, code, out, errs) {
		t.Log("this kernel drops task filters at execve: ringfence run refused to start the program")
		return
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	outs := parseOutputs(t, out)
	if len(outs) != 1 || outs[0].Error != "" || len(outs[0].Results) != len(uringprobe.Probes()) {
		t.Fatalf("output: %s", out)
	}
	key := map[string]bool{"NOP": true, "READ": true, "WRITE": true, "URING_CMD": true,
		"SOCKET AF_INET SOCK_STREAM": true, "SOCKET AF_PACKET SOCK_RAW": true, "SOCKET AF_NETLINK SOCK_RAW": true,
		"OPENAT /proc/self/status O_RDONLY": true, "OPENAT2 /proc/self/status O_RDONLY": true, "SEND": true, "ACCEPT": true}
	denied := 0
	for _, r := range outs[0].Results {
		if r.Denied() {
			denied++
		} else if key[r.Name] {
			t.Errorf("under deny-all, %s returned %d, not EACCES", r.Name, r.Res)
		}
	}
	t.Logf("deny-all: %d of %d probes denied by the filter", denied, len(outs[0].Results))
}

// TestRunInheritedRing checks --ring-fds: a ring made inheritable before
// "ringfence run" is closed before exec (close) or stops the run (refuse);
// without ringfence it does reach the program (the control).
func TestRunInheritedRing(t *testing.T) {
	needFilters(t)
	// Control: the ring survives exec when nobody closes it.
	out, errs, code := runHelper(t, helperCmd("keepring", "ringfds"))
	outs := parseOutputs(t, out)
	if code != 0 || len(outs) != 1 || len(outs[0].RingFDs) != 1 {
		t.Fatalf("control: exit %d, %s %s: want one inherited ring", code, out, errs)
	}
	// close: the program sees no ring.
	out, errs, code = runHelper(t, helperCmd("keepring", append(append([]string{"main"}, runArgs("--ring-fds=close", "--profile", "default", "--")...), helperArgv("ringfds")...)...))
	if refusedForExec(t, code, out, errs) {
		// Still check that the refusal is not the ring-fds one, then
		// check the ring is closed with --if-supported, which runs it.
		out, errs, code = runHelper(t, helperCmd("keepring", append(append([]string{"main"}, runArgs("--if-supported", "--ring-fds=close", "--profile", "default", "--")...), helperArgv("ringfds")...)...))
	}
	outs = parseOutputs(t, out)
	if code != 0 || len(outs) != 1 || len(outs[0].RingFDs) != 0 {
		t.Fatalf("--ring-fds=close: exit %d, %s %s: want no ring in the program", code, out, errs)
	}
	// refuse: the program does not run.
	out, errs, code = runHelper(t, helperCmd("keepring", append(append([]string{"main"}, runArgs("--ring-fds=refuse", "--profile", "default", "--")...), helperArgv("ringfds")...)...))
	if code != exitRunFailed || out != "" || !strings.Contains(errs, "inherited io_uring descriptors") {
		t.Fatalf("--ring-fds=refuse: exit %d, stdout %q, stderr %q: want 125, nothing run", code, out, errs)
	}
}

// TestRunRefusesWithoutFilters checks, on kernels without io_uring
// filters (6.19), that run does not start the program, and that
// --if-supported does, with a warning.
func TestRunRefusesWithoutFilters(t *testing.T) {
	needVM(t)
	if kernel.Supported() == nil {
		t.Skip("this kernel has io_uring filters; see TestRunProfilesInVM")
	}
	out, errs, code := runHelper(t, helperCmd("main", append(runArgs("--"), helperArgv("ringfds")...)...))
	if code != exitRunFailed || out != "" || !strings.Contains(errs, "no io_uring BPF filters") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want 125, program not run, reason given", code, out, errs)
	}
	out, errs, code = runHelper(t, helperCmd("main", append(runArgs("--if-supported", "--"), helperArgv("ringfds")...)...))
	if code != 0 || len(parseOutputs(t, out)) != 1 || !strings.Contains(errs, "WITHOUT") {
		t.Fatalf("--if-supported: exit %d, stdout %q, stderr %q: want the program run with a warning", code, out, errs)
	}
}

// TestExecKeepsTaskFilters records, on each kernel, whether io_uring task
// filters survive execve: they must when the thread never used io_uring
// (what "ringfence run" relies on). Whether they survive on a thread that
// created a ring first is logged: Linux 7.0 drops them then.
func TestExecKeepsTaskFilters(t *testing.T) {
	needFilters(t)
	k, _ := kernel.Version()
	out, errs, code := runHelper(t, helperCmd("applyexec"))
	if code != 0 || !strings.Contains(out, "restricted=true err=<nil>") {
		t.Fatalf("a thread that never used io_uring lost its task filters at execve on %v: %q (exit %d, %s)", k, out, code, errs)
	}
	out, errs, code = runHelper(t, helperCmd("ringapplyexec"))
	if code != 0 || !strings.Contains(out, "err=<nil>") {
		t.Fatalf("ringapplyexec: %q (exit %d, %s)", out, code, errs)
	}
	t.Logf("%v: after a ring on the thread, task filters at execve: %s", k, map[bool]string{true: "kept", false: "DROPPED"}[strings.Contains(out, "restricted=true")])
}

// badRegKernel is the real kernel, except that registration number bad is
// sent with pdu_size 255, which every kernel refuses with EMSGSIZE.
type badRegKernel struct {
	ringfence.Kernel
	bad, n int
}

func (k *badRegKernel) RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	if k.n++; k.n-1 == k.bad {
		pdu = 255
	}
	return k.Kernel.RegisterTaskFilter(op, prog, flags, pdu)
}

// TestRunRefusedFilterInVM makes the real kernel refuse one registration
// (the first, one in the middle, the last) and checks that the program
// does not run and the message says which registration failed and why.
func TestRunRefusedFilterInVM(t *testing.T) {
	needFilters(t)
	k, _ := kernel.Version()
	p, err := ringfence.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ringfence.Compile(p, k)
	if err != nil {
		t.Fatal(err)
	}
	n := len(plan.Registrations)
	for _, bad := range []int{0, n / 2, n - 1} {
		args := append(append([]string{strconv.Itoa(bad)}, runArgs("--profile", "default", "--")[1:]...), helperArgv("ringfds")...)
		out, errs, code := runHelper(t, helperCmd("badreg", args...))
		// Of the plan's registrations and the canary filter, last.
		want := fmt.Sprintf("register filter %d of %d (%v): ", bad+1, n+1, plan.Registrations[bad].Op)
		if code != exitRunFailed || out != "" || !strings.Contains(errs, want) || !strings.Contains(errs, "pdu_size 255") {
			t.Errorf("registration %d refused by the kernel: exit %d, stdout %q, stderr %q; want 125, nothing run, %q", bad+1, code, out, errs, want)
		}
	}
}
