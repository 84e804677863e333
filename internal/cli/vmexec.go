package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vminit"
)

// guestBinDir holds the static ringfence inside a guest; it is on the
// guest's PATH, so a command run there can name "ringfence".
const guestBinDir = "/ringfence/bin"

// runInVM boots Debian kernel version under QEMU with a static ringfence
// (built from the source tree) and extra files in the initramfs, runs
// "ringfence args..." as the guest's only step, copies the step's output to
// e.stdout, and returns its exit status. An error is a failure of the
// harness itself (no source tree, no kernel, no boot).
func runInVM(e *env, version string, files []vm.File, args []string) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srcDir, err := vm.ModuleRoot(ctx)
	if err != nil {
		return 0, fmt.Errorf("needs the ringfence source tree and Go, like \"ringfence vm test\": %w", err)
	}
	cache, err := debian.DefaultCacheDir()
	if err != nil {
		return 0, err
	}
	ks, err := vm.ResolveKernels(ctx, &debian.Fetcher{CacheDir: cache, Log: e.stderr}, []string{version}, e.stderr)
	if err != nil {
		return 0, err
	}
	work, err := os.MkdirTemp("", "ringfence-vm-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	initBin, err := vm.BuildInit(ctx, srcDir, work)
	if err != nil {
		return 0, err
	}
	bin := filepath.Join(work, "ringfence")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ringfence")
	build.Dir = srcDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build: %v\n%s", err, out)
	}
	guestBin := guestBinDir + "/ringfence"
	m := &vm.Machine{
		Kernel: ks[0],
		Init:   initBin,
		Files:  append([]vm.File{{Path: guestBin, HostPath: bin, Mode: 0o755}}, files...),
		Config: vminit.Config{TimeoutSec: 170, Steps: []vminit.Step{{
			Name: "ringfence", Path: guestBin, Args: args, Dir: "/tmp", TimeoutSec: 150,
			Env: []string{"PATH=" + guestBinDir + ":/usr/bin:/bin"},
		}}},
		Timeout: 4 * time.Minute,
	}
	fmt.Fprintf(e.stderr, "booting %s\n", ks[0].Release)
	r, err := m.Boot(ctx, work)
	if err != nil {
		return 0, err
	}
	if len(r.Steps) != 1 || !r.Steps[0].Ended {
		return 0, fmt.Errorf("the guest did not finish: %s", strings.Join(r.Problems, "; "))
	}
	if _, err := e.stdout.Write(r.Steps[0].Output); err != nil {
		return 0, err
	}
	return r.Steps[0].Exit, nil
}

// vmExecCommand is "ringfence vm exec VERSION -- ARGS...": run "ringfence
// ARGS..." inside Debian's kernel VERSION under QEMU and exit with its
// status. It lets a machine whose own kernel has no io_uring BPF filters
// run ringfence's main job, "ringfence run", on a kernel that has them.
func vmExecCommand() *command {
	return &command{
		name:    "vm exec",
		args:    "VERSION -- ARGS...",
		summary: "boot one kernel and run a ringfence command inside it",
		argsEnd: true,
		help: `Boots Debian's Linux VERSION (7.3, or an exact 7.3.4) under QEMU and runs
"ringfence ARGS..." inside it, as root, with ringfence on the guest's PATH.
Its output and exit status become this command's. Example:

    ringfence vm exec 7.3 -- run --profile default -- ringfence probe

Like "ringfence vm test", it needs the ringfence source tree as the working
directory, the Go toolchain and qemu-system-x86_64; kernels are cached.

Exit status: that of the command in the guest; 2 for bad usage or when the
kernel cannot be fetched or booted.`,
		setup: func(*flag.FlagSet) action {
			return func(e *env, args []string) error {
				if len(args) < 1 {
					return usagef("give a kernel VERSION and the ringfence command to run")
				}
				version, guestArgs := args[0], args[1:]
				if len(guestArgs) > 0 && guestArgs[0] == "--" {
					guestArgs = guestArgs[1:]
				}
				if len(guestArgs) == 0 {
					return usagef("no ringfence command to run after VERSION --")
				}
				code, err := runInVM(e, version, nil, guestArgs)
				if err != nil {
					return err
				}
				return exitStatus(code)
			}
		},
	}
}
