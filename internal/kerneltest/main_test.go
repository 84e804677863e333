package kerneltest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// Environment variables shared with the VM harness and the child processes.
const (
	envInVM  = "RINGFENCE_IN_VM" // set to 1 by the VM init: a skip is a failure
	envChild = "RINGFENCE_KERNELTEST_CHILD"
)

// skipMessage is what host runs print for kernel-only tests.
const skipMessage = "needs io_uring BPF filters (Linux 7.0+): run in the VM harness: go run ./cmd/ringfence vm test"

// inVM reports whether the tests run inside the VM harness.
func inVM() bool { return os.Getenv(envInVM) == "1" }

// needFilters returns the running kernel's version if it has io_uring BPF
// filters. Otherwise it skips the test on a host, and fails it inside the
// VM on a kernel that should have them (7.0 and later).
func needFilters(t testing.TB) abi.Version {
	t.Helper()
	v, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.Supported(); err != nil {
		if inVM() && !v.Less(abi.FilterSince()) {
			t.Fatalf("in the VM on Linux %v, io_uring BPF filters should work: %v", v, err)
		}
		t.Skipf("%s (this is Linux %v: %v)", skipMessage, v, err)
	}
	return v
}

// children maps a child-process helper's name to its body. A child runs in
// a fresh process (the test binary re-executed), so that what it registers
// on its task dies with it. It returns an error to fail.
func children() map[string]func(arg string) error {
	return map[string]func(string) error{
		"task-deny-nop":       childTaskDenyNop,
		"task-inherit":        childTaskInherit,
		"task-stack":          childTaskStack,
		"task-restrict-once":  childTaskRestrictOnce,
		"task-restrict-order": childTaskRestrictOrder,
		"task-no-nnp":         childTaskNoNNP,
		"task-deny-rest":      childTaskDenyRest,
		"grandchild-probe":    childGrandchildProbe,
	}
}

func TestMain(m *testing.M) {
	if name := os.Getenv(envChild); name != "" {
		f, ok := children()[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "kerneltest child: unknown helper %q\n", name)
			os.Exit(3)
		}
		// Task state is per thread: keep this goroutine on one thread.
		runtime.LockOSThread()
		if err := f(os.Getenv(envChild + "_ARG")); err != nil {
			fmt.Fprintf(os.Stderr, "kerneltest child %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild runs the helper name in a new process and fails t if it fails.
func runChild(t *testing.T, name, arg string) {
	t.Helper()
	if err := startChild(name, arg); err != nil {
		t.Fatal(err)
	}
}

func startChild(name, arg string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+name, envChild+"_ARG="+arg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("child %s: %v\n%s", name, err, out)
	}
	return nil
}

// nop returns a NOP request.
func nop(ud uint64) kernel.Request { return kernel.Request{Op: abi.OpNop, UserData: ud} }

// run submits req alone on r and returns its result, closing any file
// descriptor the request created.
func run(r *kernel.Ring, req kernel.Request) (int32, error) {
	c, err := r.Do(req.SQE())
	if err != nil {
		return 0, err
	}
	closeResult(req.Op, c.Res)
	return c.Res, nil
}

// closeResult closes the descriptor a successful SOCKET or open returned.
func closeResult(op abi.Opcode, res int32) {
	if res >= 0 && (op == abi.OpSocket || op == abi.OpOpenat || op == abi.OpOpenat2) {
		unix.Close(int(res))
	}
}

// newRing creates a ring or fails the test.
func newRing(t testing.TB, p kernel.Params) *kernel.Ring {
	t.Helper()
	r, err := kernel.NewRing(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

const eacces = -int32(unix.EACCES)

// expectAllowed fails t unless req on r is allowed (anything but
// -EACCES) or denied (-EACCES), as allowed says.
func expectAllowed(t testing.TB, r *kernel.Ring, req kernel.Request, allowed bool, what string) {
	t.Helper()
	res, err := run(r, req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if allowed && res == eacces {
		t.Errorf("%s: got -EACCES, want the request to run", what)
	}
	if !allowed && res != eacces {
		t.Errorf("%s: got %d, want -EACCES", what, res)
	}
}

// checkAllowed is expectAllowed for child processes: it returns an error.
func checkAllowed(r *kernel.Ring, req kernel.Request, allowed bool, what string) error {
	res, err := run(r, req)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if allowed && res == eacces {
		return fmt.Errorf("%s: got -EACCES, want the request to run", what)
	}
	if !allowed && res != eacces {
		return fmt.Errorf("%s: got %d, want -EACCES", what, res)
	}
	return nil
}

// Programs used by many tests.
func allowAll() []cbpf.Instruction { return []cbpf.Instruction{cbpf.Ret(1)} }
func denyAll() []cbpf.Instruction  { return []cbpf.Instruction{cbpf.Ret(0)} }

// retUserDataLow returns a program that returns the low word of
// user_data: the request runs unless user_data's low 32 bits are 0.
func retUserDataLow() []cbpf.Instruction {
	return []cbpf.Instruction{cbpf.LoadAbs(0), cbpf.RetAcc()}
}

// errnoIs reports whether err wraps errno.
func errnoIs(err error, errno unix.Errno) bool { return errors.Is(err, errno) }

// hexWords formats context words for failure messages.
func hexWords(w [10]uint32) string {
	var s []string
	for i, x := range w {
		s = append(s, fmt.Sprintf("w%d@%d=%#08x", i, 4*i, x))
	}
	return strings.Join(s, " ")
}

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
