package vm

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/internal/vminit"
)

// TestRunInKernel boots a real kernel with vm.Run and runs a program in
// it: the guest init's own binary, which refuses to run when it is not
// PID 1, with a fixed message and exit status 2. Both must come back.
func TestRunInKernel(t *testing.T) {
	vmtest.RequireExternal(t, "boots a kernel under QEMU", QEMU, "apt-get", "dpkg-deb")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := debian.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	f := &debian.Fetcher{CacheDir: dir}
	ks, err := ResolveKernels(ctx, f, []string{"7.3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := BuildInit(ctx, src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, exit, err := Run(ctx, ks[0], []File{{Path: "/bin/probe", HostPath: bin}}, []string{"/bin/probe", "ignored-arg"}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if exit != 2 || !strings.Contains(string(out), "it only runs as PID 1") {
		t.Errorf("exit %d, output %q; want 2 and the init's refusal", exit, out)
	}
	if strings.Contains(string(out), "RINGFENCE") {
		t.Errorf("output holds markers: %q", out)
	}
}

// TestStepDeadlineAndArgs boots a guest whose first step hangs: the init
// must kill it at its deadline, report it timed out, and still run the next
// step. The kernel command line carries "-- -test.run=^TestBootedKernel$",
// which the init must append to the steps' arguments, so the second step
// runs exactly that one test.
func TestStepDeadlineAndArgs(t *testing.T) {
	vmtest.RequireExternal(t, "boots a kernel under QEMU", QEMU, "apt-get", "dpkg-deb")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := debian.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ResolveKernels(ctx, &debian.Fetcher{CacheDir: dir}, []string{"7.3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	initBin, err := BuildInit(ctx, src, work)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ListTestPackages(ctx, src, []string{"./internal/vm/vmtest"})
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("packages %v, %v", pkgs, err)
	}
	files, steps, err := BuildTests(ctx, src, work, pkgs, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	hang := steps[0]
	hang.Name, hang.Args, hang.TimeoutSec = "hang", []string{"-test.v"}, 3
	hang.Env = []string{"RINGFENCE_VMTEST_HANG=1"} // vmtest's TestMain sleeps
	after := steps[0]
	after.Name, after.Args = "after", []string{"-test.v"}
	m := &Machine{
		Kernel: ks[0], Init: initBin, Files: files,
		Config: vminit.Config{TimeoutSec: 60, Steps: []vminit.Step{hang, after}},
		Args:   []string{"-test.run=^TestBootedKernel$"},
	}
	r, err := m.Boot(ctx, work)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || !r.Done {
		t.Fatalf("steps %d, done %v: %v\n%s", len(r.Steps), r.Done, r.Problems, r.Console)
	}
	if h := r.Steps[0]; !h.Ended || !h.TimedOut || h.Exit != -1 {
		t.Errorf("hanging step: ended %v, timed out %v, exit %d", h.Ended, h.TimedOut, h.Exit)
	}
	if a := r.Steps[1]; a.Exit != 0 || len(a.Tests) != 1 || a.Tests[0] != (TestResult{"TestBootedKernel", "PASS"}) {
		t.Errorf("step after the hang: exit %d, tests %v; want only TestBootedKernel, passed", a.Exit, a.Tests)
	}
	if r.OK() || !strings.Contains(strings.Join(r.Problems, "\n"), "hang: timed out in the guest") {
		t.Errorf("OK() = %v, problems %v; want the timeout reported", r.OK(), r.Problems)
	}
}

func TestBootRejectsBadArgs(t *testing.T) {
	k := debian.Kernel{Release: "7.3.4+deb13-amd64", Vmlinuz: "/nonexistent"}
	for _, a := range []string{"a b", "", "x\"y", "it's"} {
		if _, err := (&Machine{Kernel: k, Args: []string{a}}).Boot(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "space or quote") {
			t.Errorf("argument %q: error %v", a, err)
		}
	}
}
