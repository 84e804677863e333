package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// failKernel fails the named step; exec records that it happened.
type failKernel struct {
	fail   string
	execed bool
	nreg   int
}

var errFake = errors.New("injected failure")

func (k *failKernel) err(step string) error {
	if k.fail == step {
		return errFake
	}
	return nil
}
func (k *failKernel) Supported() error { return k.err("support") }
func (k *failKernel) Version() (abi.Version, error) {
	return abi.Version{Major: 7, Minor: 0}, k.err("version")
}
func (k *failKernel) SetNoNewPrivs() error { return k.err("nnp") }
func (k *failKernel) ExecKeepsFilters() error {
	if k.fail == "execdrop" {
		return fmt.Errorf("Linux 7.0.13 (fake): %w", ringfence.ErrExecDropsFilters)
	}
	return nil
}
func (k *failKernel) RegisterTaskRestrictions([]abi.Restriction) error { return k.err("restrict") }
func (k *failKernel) InstallSeccomp([]cbpf.Instruction) error          { return k.err("seccomp") }

// RegisterTaskFilter refuses opcodes beyond ringfence's table with
// EINVAL, as Linux 7.0 to 7.3 do, and counts the others.
func (k *failKernel) RegisterTaskFilter(op abi.Opcode, _ []cbpf.Instruction, _ uint32, _ uint8) error {
	if int(op) >= abi.OpLast {
		return syscall.EINVAL
	}
	k.nreg++
	return k.err("register")
}
func (k *failKernel) RegisterRingFilter(_ int, op abi.Opcode, _ []cbpf.Instruction, _ uint32, _ uint8) error {
	if int(op) >= abi.OpLast {
		return syscall.EINVAL
	}
	return nil
}
func (k *failKernel) RingFDs() ([]int, error) {
	if k.fail == "rings" {
		return []int{7}, nil
	}
	return nil, k.err("scan")
}
func (k *failKernel) Close(int) error       { return nil }
func (k *failKernel) VerifyFiltered() error { return k.err("verify") }
func (k *failKernel) Exec(path string, argv, envv []string) error {
	if k.fail == "exec" {
		return errFake
	}
	k.execed = true
	return errors.New("fake exec done")
}

func TestRunFailsClosed(t *testing.T) {
	cases := []struct {
		fail  string
		args  []string
		code  int
		inErr string
	}{
		{"support", nil, exitRunFailed, "check kernel support: injected failure; "},
		{"version", nil, exitRunFailed, "read kernel version"},
		{"execdrop", nil, exitRunFailed, "io_uring: preserve task restrictions across exec"},
		{"nnp", nil, exitRunFailed, "set no_new_privs"},
		{"restrict", nil, exitRunFailed, "register io_uring task restrictions"},
		{"seccomp", nil, exitRunFailed, "install the companion seccomp filter"},
		{"register", nil, exitRunFailed, "register filter 1 of"},
		{"verify", nil, exitRunFailed, "check that the io_uring filters are in place"},
		{"scan", nil, exitRunFailed, "inherited io_uring descriptors"},
		{"rings", []string{"--ring-fds=refuse"}, exitRunFailed, "descriptors 7 are open"},
		{"exec", nil, exitNotExecable, "exec: injected failure"},
	}
	for _, c := range cases {
		k := &failKernel{fail: c.fail}
		var out, errb bytes.Buffer
		args := append(append([]string{}, c.args...), "--", os.Args[0])
		code := runCommandWith(k).main(&env{stdout: &out, stderr: &errb}, args)
		if k.execed {
			t.Errorf("%s: the program ran", c.fail)
		}
		if code != c.code || !strings.Contains(errb.String(), c.inErr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.fail, code, errb.String(), c.code, c.inErr)
		}
	}
}

func TestRunUsage(t *testing.T) {
	cases := []struct {
		args  []string
		code  int
		inErr string
	}{
		// run's own failures, bad usage included, exit 125, which a
		// caller can tell from the program's own statuses.
		{[]string{}, exitRunFailed, "no command given"},
		{[]string{"--policy", "x.yaml", "--profile", "default", "--", "prog"}, exitRunFailed, "not both"},
		{[]string{"--ring-fds=keep", "--", "true"}, exitRunFailed, "want close or refuse"},
		{[]string{"--profile", "nope", "--", "true"}, exitRunFailed, "unknown profile \"nope\""},
		{[]string{"--policy", "/nonexistent.yaml", "--", "true"}, exitRunFailed, "nonexistent.yaml"},
		{[]string{"--nope", "--", "true"}, exitRunFailed, "flag provided but not defined: -nope"},
		{[]string{"--policy"}, exitRunFailed, "flag needs an argument"},
		{[]string{"--", "/nonexistent/prog"}, exitNotFound, "not run"},
		{[]string{"--", "no-such-program-ringfence"}, exitNotFound, "not run"},
	}
	for _, c := range cases {
		k := &failKernel{}
		var out, errb bytes.Buffer
		code := runCommandWith(k).main(&env{stdout: &out, stderr: &errb}, c.args)
		if k.execed || k.nreg > 0 {
			t.Errorf("%v: ran or registered (execed %v, %d registrations)", c.args, k.execed, k.nreg)
		}
		if code != c.code || !strings.Contains(errb.String(), c.inErr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.inErr)
		}
	}
}

// TestRunDefaultProfile checks that without a policy the default profile
// is registered and the program executed.
func TestRunDefaultProfile(t *testing.T) {
	k := &failKernel{}
	var out, errb bytes.Buffer
	runCommandWith(k).main(&env{stdout: &out, stderr: &errb}, []string{"--", os.Args[0]})
	p, err := ringfence.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ringfence.Compile(p, abi.Version{Major: 7, Minor: 0})
	if err != nil {
		t.Fatal(err)
	}
	// The profile's filters, then the canary.
	if n := len(plan.Registrations) + 1; !k.execed || k.nreg != n {
		t.Fatalf("execed %v after %d registrations; want the default profile's %d and the canary: %s", k.execed, k.nreg, n-1, errb.String())
	}
}

// exitCodeOf is the exit status an action's error stands for (without
// printing anything).
func exitCodeOf(err error) int {
	var xe *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &xe):
		return xe.status
	}
	return exitUsage
}

// TestRunAllowExecDrop runs on a kernel that drops filters at execve only
// with --allow-exec-drop, with a loud warning.
func TestRunAllowExecDrop(t *testing.T) {
	k := &failKernel{fail: "execdrop"}
	var out, errb bytes.Buffer
	runCommandWith(k).main(&env{stdout: &out, stderr: &errb}, []string{"--allow-exec-drop", "--", os.Args[0]})
	if !k.execed || !strings.Contains(errb.String(), "warning: UNSAFE") {
		t.Fatalf("execed %v, stderr %q", k.execed, errb.String())
	}
}
