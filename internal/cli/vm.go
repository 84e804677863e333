package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/bench"
	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/userland"
	"github.com/ringfence/ringfence/internal/vminit"
)

// vmCommand is "ringfence vm": the kernel-matrix harness.
func vmCommand() *command {
	return &command{
		name:    "vm",
		summary: "real kernels under QEMU: kernel tests, commands in the Debian guest (vm test, kernels, exec, run, image, bench)",
		help: `Runs ringfence's kernel tests, or one ringfence command, inside real Linux
kernels under QEMU. Kernels are Debian's, fetched with apt and cached in
$RINGFENCE_CACHE, else $XDG_CACHE_HOME/ringfence, else ~/.cache/ringfence.
Set RINGFENCE_QEMU_ACCEL=kvm to try KVM.`,
		subs: []*command{vmTestCommand(), vmKernelsCommand(), vmExecCommand(), vmRunCommand(), vmImageCommand(), vmBenchCommand()},
	}
}

// vmTestCommand is "ringfence vm test".
func vmTestCommand() *command {
	return &command{
		name:    "vm test",
		summary: "run the in-VM test packages in each kernel of the matrix",
		help: `Fetches Debian kernels with apt (cached), builds the in-VM test binaries
with "go test -c" (so it needs the ringfence source tree as the working
directory and the Go toolchain), boots each kernel with
qemu-system-x86_64, and prints a table per kernel and the line
"N passed, N failed". With --markdown it also prints the table as
Markdown with the figures the kernel tests report (programs and requests
compared, mismatches): the README's lab figures come from it.

Packages that need the Debian guest userland get it (built once with
mmdebstrap, cached). The containerd tests also get containerd 2.2 and 2.3,
which the harness builds from the Go module proxy into the cache the first
time (about 2 minutes and 600 MB of module downloads on empty Go caches).

Exit status: 0 every test passed; 1 a test failed, a kernel did not boot, a
test package hung (--timeout), or a kernel's io_uring BPF filter support is
not what its version says; 2 bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			kernels := kernelList(vm.DefaultKernels())
			fs.Var(&kernels, "kernels", "comma-separated `KERNELS`: 7.0 (newest 7.0.x) or 7.0.4 (exactly)")
			run := fs.String("run", "", "run only the tests matching `REGEX` (go test -run)")
			cache := fs.String("cache", "", "cache `DIR` for kernels, the userland and the containerd builds (default $RINGFENCE_CACHE or ~/.cache/ringfence)")
			verbose := fs.Bool("v", false, "stream every guest's console output")
			markdown := fs.Bool("markdown", false, "also print the per-kernel table as Markdown, with the figures the tests report (the README's lab figures)")
			parallel := fs.Int("parallel", 2, "`N` VMs at once")
			timeout := fs.Duration("timeout", 4*time.Minute, "`DURATION` allowed each test package in each kernel (tests that hang are killed and fail)")
			var pkgs kernelList
			fs.Var(&pkgs, "packages", "comma-separated `PACKAGES` to test (default: the harness's list)")
			return func(e *env, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if *run != "" {
					if _, err := regexp.Compile(*run); err != nil {
						return usagef("--run: %v", err)
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
					return fail(exitDenied, err)
				}
				m.WriteReport(e.stdout, *verbose)
				if *markdown {
					fmt.Fprintln(e.stdout)
					m.WriteMarkdown(e.stdout)
				}
				if !m.OK() {
					return exitStatus(exitDenied)
				}
				return nil
			}
		},
	}
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

// vmKernelsCommand is "ringfence vm kernels".
func vmKernelsCommand() *command {
	return &command{
		name:    "vm kernels",
		summary: "list the kernels the archive offers and which are cached",
		help: `Lists the kernels Debian's archive offers, which are cached, and which the
matrix boots by default.

Exit status: 0 listed (the cached kernels only when the archive cannot be
reached), 1 the cache cannot be read, 2 bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			cache := fs.String("cache", "", "cache `DIR` for kernels")
			offline := fs.Bool("offline", false, "list only cached kernels, without asking the archive")
			return func(e *env, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				return listKernels(e, *cache, *offline)
			}
		},
	}
}

// listKernels is "ringfence vm kernels".
func listKernels(e *env, cache string, offline bool) error {
	dir := cache
	if dir == "" {
		var err error
		if dir, err = debian.DefaultCacheDir(); err != nil {
			return err
		}
	}
	f := &debian.Fetcher{CacheDir: dir, Log: e.stderr}
	cached, err := f.Cached()
	if err != nil {
		return fail(exitDenied, err)
	}
	isCached := map[string]bool{}
	for _, k := range cached {
		isCached[k.Release] = true
	}
	var avail []debian.Kernel
	if !offline {
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
	return nil
}

// vmRunCommand is "ringfence vm run": a shell command in the Debian guest.
func vmRunCommand() *command {
	return &command{
		name:    "vm run",
		args:    "[--] SHELL-COMMAND...",
		summary: "boot one kernel with the Debian userland and run a shell command",
		argsEnd: true,
		help: `Boots one kernel with the Debian guest userland (PostgreSQL 18, Node.js,
fio, qemu-img/qemu-io, runc, crun, Podman, conmon, containerd) and runs the
shell command (its words joined by spaces, run by /bin/sh -ec in /tmp, as
root, ringfence on PATH). Its output and exit status become this command's.
Example:

    ringfence vm run --kernel 7.3 -- ringfence run --profile storage -- \
        fio --name=r --ioengine=io_uring --rw=randread --size=8m

Exit status: that of the command in the guest; 2 for bad usage or when the
guest cannot be built, booted or does not finish.`,
		setup: func(fs *flag.FlagSet) action {
			kernel := fs.String("kernel", "7.3", "kernel to boot: `VERSION` 7.3 (newest 7.3.x) or 7.3.4 (exactly)")
			noUserland := fs.Bool("no-userland", false, "boot without the Debian userland (only ringfence and the init; the command is run directly, not by a shell)")
			timeout := fs.Duration("timeout", 5*time.Minute, "`DURATION` allowed the command in the guest")
			memory := fs.Int("memory", 0, "guest memory in `MB` (default 4096 with the userland, 512 without)")
			verbose := fs.Bool("v", false, "stream the guest's console output (kernel messages included)")
			return func(e *env, words []string) error {
				if len(words) > 0 && words[0] == "--" {
					words = words[1:]
				}
				if len(words) == 0 {
					return usagef("no command")
				}
				if *timeout < time.Second {
					return usagef("--timeout must be at least 1s")
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
					return err
				}
				if len(r.Steps) != 1 || !r.Steps[0].Ended {
					if len(r.Steps) == 1 {
						e.stdout.Write(r.Steps[0].Output)
					}
					return fmt.Errorf("the guest did not finish: %s", strings.Join(r.Problems, "; "))
				}
				if _, err := e.stdout.Write(r.Steps[0].Output); err != nil {
					return err
				}
				if r.Steps[0].TimedOut {
					fmt.Fprintf(e.stderr, "ringfence vm run: the command timed out after %v\n", *timeout)
				}
				return exitStatus(r.Steps[0].Exit)
			}
		},
	}
}

// vmImageCommand is "ringfence vm image": build or show the guest
// userland.
func vmImageCommand() *command {
	return &command{
		name:    "vm image",
		summary: "build the Debian guest userland if not cached, and describe it",
		help: `Builds the guest userland with mmdebstrap if it is not cached (about a
minute and 150 MB of downloads), and prints its path, size and key;
--packages also lists its packages and versions.

Exit status: 0 built or cached, 1 the build failed, 2 bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			cache := fs.String("cache", "", "cache `DIR` (default $RINGFENCE_CACHE or ~/.cache/ringfence)")
			pkgs := fs.Bool("packages", false, "list the image's packages and versions")
			return func(e *env, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				dir := *cache
				if dir == "" {
					var err error
					if dir, err = debian.DefaultCacheDir(); err != nil {
						return err
					}
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
				defer stop()
				img, err := userland.Ensure(ctx, dir, userland.Default(), e.stderr)
				if err != nil {
					return fail(exitDenied, err)
				}
				fmt.Fprintf(e.stdout, "image %s\nkey %s\nsize %d MB\n", img.Path, img.Key, img.Size>>20)
				if img.Built > 0 {
					fmt.Fprintf(e.stdout, "built in %.0fs\n", img.Built.Seconds())
				}
				if *pkgs {
					fmt.Fprint(e.stdout, img.Packages)
				}
				return nil
			}
		},
	}
}

// vmBenchCommand is "ringfence vm bench".
func vmBenchCommand() *command {
	return &command{
		name:    "vm bench",
		summary: "measure what the profiles cost real workloads, in one boot",
		help: `Boots one kernel with the Debian guest userland and runs, in that one boot,
interleaved and repeated, each workload unconfined and under each profile
it belongs under: a NOP submission loop (one filter run per request), fio
4 KiB random reads on io_uring (plain, registered files and buffers,
SQPOLL), qemu-img bench 4 KiB reads with aio=io_uring, Node.js with
UV_USE_IO_URING=1 opening and closing loopback TCP connections, and
pgbench select-only transactions against PostgreSQL 18 with
io_method=io_uring. Two baselines besides the unconfined run tell the
costs apart: "seccomp-only" (only the companion seccomp filter, no
io_uring filter) and "default@deny-rest" (the default profile in the
DENY_REST form). It prints a Markdown table: each profile's median, and
its ratio to the unconfined run of the same round (median, and the
smallest and largest over the rounds). The guest runs on QEMU's
instruction clock (-icount): its time advances with the instructions it
runs, so the rates it measures do not depend on how busy the host is
(--wall-clock measures with the host's time instead). Under emulation only
the ratios mean something. A run with the defaults takes about 25
minutes.

Exit status: 0 measured, 1 the benchmark failed, 2 bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			kernel := fs.String("kernel", "7.3", "kernel to boot: `VERSION` 7.3 (newest 7.3.x) or 7.3.4")
			rounds := fs.Int("rounds", 5, "`N` rounds; each measures every workload under every profile once")
			seconds := fs.Int("seconds", 2, "length of one sample in `SECONDS`")
			samples := fs.Bool("samples", false, "print every sample too")
			wall := fs.Bool("wall-clock", false, "measure with the host's time, not QEMU's instruction clock (noisy on a busy host)")
			verbose := fs.Bool("v", false, "stream the guest's console output")
			return func(e *env, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if *rounds < 1 || *seconds < 1 {
					return usagef("--rounds and --seconds must be at least 1")
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
				defer stop()
				o := bench.Options{Kernel: *kernel, Rounds: *rounds, Seconds: *seconds, WallClock: *wall, Log: e.stderr}
				if *verbose {
					o.Console = e.stderr
				}
				r, err := bench.Run(ctx, o)
				if err != nil {
					return fail(exitDenied, err)
				}
				if *samples {
					for _, s := range r.Samples {
						fmt.Fprintln(e.stdout, s)
					}
				}
				clock := "instruction clock"
				if *wall {
					clock = "wall clock"
				}
				fmt.Fprintf(e.stdout, "kernel %s, %s, %d rounds of %d s samples, %.0f s\n\n", r.Release, clock, *rounds, *seconds, r.Wall.Seconds())
				bench.WriteTable(e.stdout, r.Rows)
				return nil
			}
		},
	}
}
