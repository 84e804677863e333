package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/userland"
	"github.com/ringfence/ringfence/internal/vminit"
)

// cmdVM runs the kernel-matrix harness: "vm test" and "vm kernels".
func cmdVM(e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		vmUsage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "test":
		return cmdVMTest(e, args[1:])
	case "kernels":
		return cmdVMKernels(e, args[1:])
	case "exec":
		return cmdVMExec(e, args[1:])
	case "run":
		return cmdVMRun(e, args[1:])
	case "image":
		return cmdVMImage(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "ringfence vm: unknown subcommand %q; want \"test\", \"kernels\", \"exec\", \"run\" or \"image\"\n", args[0])
	return exitUsage
}

func vmUsage(w io.Writer) {
	fmt.Fprint(w, `usage: ringfence vm test [--kernels 6.19,7.0,...] [--run REGEX] [--cache DIR] [-v]
       ringfence vm kernels [--cache DIR] [--offline]
       ringfence vm exec VERSION -- ARGS...
       ringfence vm run [--kernel 7.3] [--no-userland] [--timeout D] [-v] -- SHELL-COMMAND...
       ringfence vm image [--cache DIR] [--packages]

Runs ringfence's kernel tests inside real Linux kernels under QEMU.

"vm test" fetches Debian kernels with apt (cached), builds the in-VM test
binaries with "go test -c" (so it needs the ringfence source tree as the
working directory and the Go toolchain), boots each kernel with
qemu-system-x86_64, and prints a table per kernel and the line
"N passed, N failed". It exits 1 if any test failed, a kernel did not boot,
a test package hangs (--timeout), or a kernel's io_uring BPF filter
support is not what its version says.

"vm kernels" lists the kernels the archive offers and which are cached.

"vm exec" boots one kernel and runs "ringfence ARGS..." inside it, e.g.
"ringfence vm exec 7.3 -- run --profile default -- ringfence probe".

"vm run" boots one kernel with the Debian guest userland (PostgreSQL 18,
Node.js, fio, qemu-img/qemu-io, runc, crun, Podman, conmon) and runs the
shell command (its words joined by spaces, run by /bin/sh -ec in /tmp, as
root, ringfence on PATH). Its output and exit status become this
command's. Example:

    ringfence vm run --kernel 7.3 -- ringfence run --profile storage -- fio --name=r --ioengine=io_uring --rw=randread --size=8m

"vm image" builds the guest userland with mmdebstrap if it is not cached
(about a minute and 150 MB of downloads), and prints its path, size and
key; --packages also lists its packages and versions.

Kernels are cached in $RINGFENCE_CACHE, else $XDG_CACHE_HOME/ringfence,
else ~/.cache/ringfence. Set RINGFENCE_QEMU_ACCEL=kvm to try KVM.
`)
}

// kernelList is a comma-separated flag value.
type kernelList []string

func (k *kernelList) String() string { return strings.Join(*k, ",") }

func (k *kernelList) Set(s string) error {
	*k = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*k = append(*k, v)
		}
	}
	if len(*k) == 0 {
		return fmt.Errorf("empty kernel list")
	}
	return nil
}

func cmdVMTest(e *env, args []string) int {
	fs := flag.NewFlagSet("vm test", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	kernels := kernelList(vm.DefaultKernels())
	fs.Var(&kernels, "kernels", "comma-separated kernels: 7.0 (newest 7.0.x) or 7.0.4 (exactly)")
	run := fs.String("run", "", "run only the tests matching `REGEX` (go test -run)")
	cache := fs.String("cache", "", "cache `DIR` for kernels (default $RINGFENCE_CACHE or ~/.cache/ringfence)")
	verbose := fs.Bool("v", false, "stream every guest's console output")
	parallel := fs.Int("parallel", 2, "number of VMs at once")
	timeout := fs.Duration("timeout", 4*time.Minute, "deadline for each test package in each kernel (tests that hang are killed and fail)")
	var pkgs kernelList
	fs.Var(&pkgs, "packages", "comma-separated package patterns to test (default: the harness's list)")
	fs.Usage = func() { vmUsage(e.stderr); fmt.Fprintln(e.stderr, "\nflags:"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "ringfence vm test: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *run != "" {
		if _, err := regexp.Compile(*run); err != nil {
			fmt.Fprintf(e.stderr, "ringfence vm test: --run: %v\n", err)
			return exitUsage
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := vm.Options{
		CacheDir: *cache,
		Kernels:  kernels,
		Run:      *run,
		Parallel: *parallel,
		Timeout:  *timeout,
		Log:      e.stderr,
	}
	if len(pkgs) > 0 {
		o.Packages = pkgs
	}
	if *verbose {
		o.Console = e.stdout
	}
	m, err := vm.Test(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence vm test: %v\n", err)
		return exitDenied
	}
	m.WriteReport(e.stdout, *verbose)
	if !m.OK() {
		return exitDenied
	}
	return exitOK
}

func cmdVMKernels(e *env, args []string) int {
	fs := flag.NewFlagSet("vm kernels", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cache := fs.String("cache", "", "cache `DIR` for kernels")
	offline := fs.Bool("offline", false, "list only cached kernels, without asking the archive")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	dir := *cache
	if dir == "" {
		var err error
		if dir, err = debian.DefaultCacheDir(); err != nil {
			fmt.Fprintf(e.stderr, "ringfence vm kernels: %v\n", err)
			return exitUsage
		}
	}
	f := &debian.Fetcher{CacheDir: dir, Log: e.stderr}
	cached, err := f.Cached()
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence vm kernels: %v\n", err)
		return exitDenied
	}
	isCached := map[string]bool{}
	for _, k := range cached {
		isCached[k.Release] = true
	}
	var avail []debian.Kernel
	if !*offline {
		avail, err = f.Kernels(context.Background(), debian.SuiteBackports)
		if err != nil {
			fmt.Fprintf(e.stderr, "ringfence vm kernels: %v (showing cached kernels only)\n", err)
		}
	}
	if avail == nil {
		avail = cached
	}
	chosen := map[string]string{}
	for _, w := range vm.DefaultKernels() {
		if k, err := debian.Resolve(avail, w); err == nil {
			chosen[k.Release] = w
		}
	}
	fmt.Fprintf(e.stdout, "cache: %s\n", dir)
	for _, k := range avail {
		var notes []string
		if isCached[k.Release] {
			notes = append(notes, "cached")
		}
		if w, ok := chosen[k.Release]; ok {
			notes = append(notes, "default for "+w)
		}
		line := fmt.Sprintf("%-10s %-36s %s", k.Version, k.Package, strings.Join(notes, ", "))
		fmt.Fprintln(e.stdout, strings.TrimRight(line, " "))
	}
	return exitOK
}

func cmdVMRun(e *env, args []string) int {
	fs := flag.NewFlagSet("vm run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	kernel := fs.String("kernel", "7.3", "kernel to boot: `VERSION` 7.3 (newest 7.3.x) or 7.3.4 (exactly)")
	noUserland := fs.Bool("no-userland", false, "boot without the Debian userland (only ringfence and the init; the command is run directly, not by a shell)")
	timeout := fs.Duration("timeout", 5*time.Minute, "deadline for the command in the guest")
	memory := fs.Int("memory", 0, "guest memory in `MB` (default 2048 with the userland, 512 without)")
	verbose := fs.Bool("v", false, "stream the guest's console output (kernel messages included)")
	fs.Usage = func() { vmUsage(e.stderr); fmt.Fprintln(e.stderr, "\nflags:"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	words := fs.Args()
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	if len(words) == 0 {
		fmt.Fprintln(e.stderr, "ringfence vm run: no command; usage: ringfence vm run [flags] -- SHELL-COMMAND...")
		return exitUsage
	}
	if *timeout < time.Second {
		fmt.Fprintln(e.stderr, "ringfence vm run: --timeout must be at least 1s")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	g := &vm.Guest{Kernel: *kernel, NoUserland: *noUserland, MemoryMB: *memory, Log: e.stderr}
	if *verbose {
		g.Console = e.stderr
	}
	st := vm.Shell("command", strings.Join(words, " "))
	if *noUserland {
		// Without the userland there is no /bin/sh: run the words.
		st = vminit.Step{Name: "command", Path: words[0], Args: words[1:], Dir: "/tmp"}
		if !strings.HasPrefix(words[0], "/") {
			st.Path = vm.GuestBinDir + "/" + words[0]
		}
	}
	st.TimeoutSec = int(*timeout / time.Second)
	r, err := g.Run(ctx, st)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence vm run: %v\n", err)
		return exitUsage
	}
	if len(r.Steps) != 1 || !r.Steps[0].Ended {
		fmt.Fprintf(e.stderr, "ringfence vm run: the guest did not finish: %s\n", strings.Join(r.Problems, "; "))
		if len(r.Steps) == 1 {
			e.stdout.Write(r.Steps[0].Output)
		}
		return exitUsage
	}
	e.stdout.Write(r.Steps[0].Output)
	if r.Steps[0].TimedOut {
		fmt.Fprintf(e.stderr, "ringfence vm run: the command timed out after %v\n", *timeout)
	}
	return r.Steps[0].Exit
}

func cmdVMImage(e *env, args []string) int {
	fs := flag.NewFlagSet("vm image", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cache := fs.String("cache", "", "cache `DIR` (default $RINGFENCE_CACHE or ~/.cache/ringfence)")
	pkgs := fs.Bool("packages", false, "list the image's packages and versions")
	fs.Usage = func() { vmUsage(e.stderr); fmt.Fprintln(e.stderr, "\nflags:"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "ringfence vm image: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	dir := *cache
	if dir == "" {
		var err error
		if dir, err = debian.DefaultCacheDir(); err != nil {
			fmt.Fprintf(e.stderr, "ringfence vm image: %v\n", err)
			return exitUsage
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	img, err := userland.Ensure(ctx, dir, userland.Default(), e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence vm image: %v\n", err)
		return exitDenied
	}
	fmt.Fprintf(e.stdout, "image %s\nkey %s\nsize %d MB\n", img.Path, img.Key, img.Size>>20)
	if img.Built > 0 {
		fmt.Fprintf(e.stdout, "built in %.0fs\n", img.Built.Seconds())
	}
	if *pkgs {
		fmt.Fprint(e.stdout, img.Packages)
	}
	return exitOK
}
