package runcli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vminit"
	"github.com/ringfence/ringfence/vm"
	"github.com/ringfence/ringfence/vm/debian"
)

// verifyInVM runs "ringfence verify" inside Debian kernel version, booted
// under QEMU by the harness of "ringfence vm": a static ringfence built from
// the source tree and the policy go into the initramfs, and the guest's
// output and exit status become this command's.
func verifyInVM(e *Env, src, version string, all bool) int {
	data, _, err := loadPolicyOrProfile(src)
	if err != nil {
		fmt.Fprintf(e.Stderr, "ringfence verify: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fail := func(err error) int {
		fmt.Fprintf(e.Stderr, "ringfence verify --vm %s: %v\n", version, err)
		return exitUsage
	}
	srcDir, err := vm.ModuleRoot(ctx)
	if err != nil {
		return fail(fmt.Errorf("needs the ringfence source tree and Go, like \"ringfence vm test\": %w", err))
	}
	cache, err := debian.DefaultCacheDir()
	if err != nil {
		return fail(err)
	}
	ks, err := vm.ResolveKernels(ctx, &debian.Fetcher{CacheDir: cache, Log: e.Stderr}, []string{version}, e.Stderr)
	if err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp("", "ringfence-verify-vm-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	initBin, err := vm.BuildInit(ctx, srcDir, work)
	if err != nil {
		return fail(err)
	}
	bin := filepath.Join(work, "ringfence")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ringfence")
	build.Dir = srcDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("go build: %v\n%s", err, out))
	}
	const guestBin, guestPolicy = "/ringfence/bin/ringfence", "/ringfence/policy.yaml"
	args := []string{"verify"}
	if all {
		args = append(args, "--all")
	}
	arg := guestPolicy
	if strings.HasPrefix(src, "profile:") {
		arg = src
	}
	args = append(args, arg)
	m := &vm.Machine{
		Kernel: ks[0],
		Init:   initBin,
		Files: []vm.File{
			{Path: guestBin, HostPath: bin, Mode: 0o755},
			{Path: guestPolicy, Data: data, Mode: 0o644},
		},
		Config: vminit.Config{TimeoutSec: 170, Steps: []vminit.Step{
			{Name: "verify", Path: guestBin, Args: args, Dir: "/tmp", TimeoutSec: 150},
		}},
		Timeout: 4 * time.Minute,
	}
	fmt.Fprintf(e.Stderr, "booting %s\n", ks[0].Release)
	r, err := m.Boot(ctx, work)
	if err != nil {
		return fail(err)
	}
	if len(r.Steps) != 1 || !r.Steps[0].Ended {
		return fail(fmt.Errorf("the guest did not finish verify: %s", strings.Join(r.Problems, "; ")))
	}
	st := r.Steps[0]
	e.Stdout.Write(st.Output)
	switch st.Exit {
	case exitOK, exitDenied, exitUsage:
		return st.Exit
	}
	return fail(fmt.Errorf("verify in the guest exited %d", st.Exit))
}
