package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/userland"
	"github.com/ringfence/ringfence/internal/vminit"
)

// DefaultKernels returns the kernel series the matrix boots by default:
// the last one without io_uring BPF filters, and every series with them.
// Each entry resolves to the newest patch release the suite offers.
func DefaultKernels() []string { return []string{"6.19", "7.0", "7.1", "7.2", "7.3"} }

// TestPackages returns the package patterns whose tests run inside the
// VMs. A package joins the matrix by being listed here; its tests should
// skip themselves on the host (see package vm/vmtest).
func TestPackages() []string {
	return []string{"./internal/vm/vmtest", "./internal/kerneltest/...", "./kernel/...", "./internal/cli", "./internal/uringtrace", "./internal/apptest", "./internal/ocishim", "./internal/nriplugin", "./internal/seccomptest", "./internal/escape", "./internal/containerdtest"}
}

// UserlandPackages returns the package patterns among TestPackages whose
// tests need the Debian guest userland (package vm/userland): real
// applications and OCI runtimes. A matrix run that includes one of them
// builds the image (once, cached) and boots every kernel with it.
func UserlandPackages() []string {
	return []string{"./internal/apptest", "./internal/ocishim", "./internal/nriplugin", "./internal/seccomptest", "./internal/containerdtest"}
}

// Options configure a test matrix run.
type Options struct {
	// SourceDir is the module root; "" means the one the go command
	// finds from the working directory.
	SourceDir string
	// CacheDir holds fetched kernels; "" means debian.DefaultCacheDir.
	CacheDir string
	// Kernels are the kernels to boot ("7.0" = newest 7.0.x, "7.0.4" =
	// exactly that); nil means DefaultKernels.
	Kernels []string
	// Packages are the package patterns to test; nil means
	// TestPackages.
	Packages []string
	// Run is passed to the test binaries as -test.run (empty: all).
	Run string
	// Parallel is how many VMs run at once; 0 means 2.
	Parallel int
	// Timeout bounds each test package's run in each kernel (the
	// binary's -test.timeout fires 10 s before, printing the running
	// tests and goroutines); 0 means 4 minutes. A kernel's whole boot is
	// bounded by the sum over its packages plus a margin, so one hanging
	// package cannot starve the others.
	Timeout time.Duration
	// Log receives progress lines (fetching, building, booting).
	Log io.Writer
	// Console, if not nil, receives every guest's console output, each
	// line prefixed with the kernel version.
	Console io.Writer
}

// Matrix is the outcome of a test matrix run.
type Matrix struct {
	Results []*Result
	Wall    time.Duration
}

// Package is a package whose tests run in the VMs.
type Package struct {
	ImportPath string
	Dir        string
	// Userland is set for the packages of UserlandPackages: they run
	// with the Debian userland and get twice the per-package timeout.
	Userland bool
}

// ModuleRoot returns the directory of the main module, from the go
// command.
func ModuleRoot(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("the go command is not on PATH: the VM harness builds the tests from source")
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the ringfence source tree (no go.mod): run from the repository")
	}
	return filepath.Dir(mod), nil
}

// ListTestPackages resolves patterns to the packages that have tests.
// Patterns that match nothing are not an error (a package may not exist
// yet).
func ListTestPackages(ctx context.Context, srcDir string, patterns []string) ([]Package, error) {
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("go list %s: %v %s", strings.Join(patterns, " "), err, msg)
	}
	var pkgs []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") {
			continue
		}
		pkgs = append(pkgs, Package{ImportPath: f[0], Dir: f[1]})
	}
	return pkgs, nil
}

// moduleDirs are the module's directories that the guest holds, besides
// each package's testdata, at the same place relative to the packages:
// the example policies, which the tests of the commands read, the real
// seccomp profiles the OCI runtime tests put into bundles and the
// from-seccomp tests derive policies from, and the deployment manifests,
// whose example pods the NRI plugin's tests read.
func moduleDirs() []string { return []string{"examples", "testdata/seccomp", "deploy"} }

// copyDir appends to files every regular file under hostDir, at the same
// path relative to hostBase under guestBase.
func copyDir(files []File, hostBase, hostDir, guestBase string) ([]File, error) {
	err := filepath.Walk(hostDir, func(hp string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		r, _ := filepath.Rel(hostBase, hp)
		files = append(files, File{Path: path.Join(guestBase, filepath.ToSlash(r)), HostPath: hp, Mode: info.Mode().Perm()})
		return nil
	})
	return files, err
}

// BuildTests compiles each package's tests statically into dir and
// returns the files and steps to put in the guest. Each package's
// testdata directory is copied too, and the module's directories of
// moduleDirs,
// and the test runs in its package's directory in the guest (under
// /src, laid out as the source tree), as go test does on the host.
// timeout bounds each package's run.
func BuildTests(ctx context.Context, srcDir, dir string, pkgs []Package, run string, timeout time.Duration) ([]File, []vminit.Step, error) {
	var files []File
	var steps []vminit.Step
	for _, d := range moduleDirs() {
		var err error
		if files, err = copyDir(files, srcDir, filepath.Join(srcDir, d), "/src"); err != nil {
			return nil, nil, err
		}
	}
	for i, p := range pkgs {
		bin := filepath.Join(dir, fmt.Sprintf("t%d.test", i))
		if err := goBuild(ctx, srcDir, "test", "-c", "-o", bin, p.ImportPath); err != nil {
			return nil, nil, err
		}
		rel, err := filepath.Rel(srcDir, p.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = strings.ReplaceAll(p.ImportPath, "/", "_")
		}
		guestDir := path.Join("/src", filepath.ToSlash(rel))
		guestBin := path.Join("/ringfence/bin", fmt.Sprintf("t%d.test", i))
		files = append(files, File{Path: guestBin, HostPath: bin, Mode: 0o755})
		td := filepath.Join(p.Dir, "testdata")
		if st, err := os.Stat(td); err == nil && st.IsDir() {
			if files, err = copyDir(files, p.Dir, td, guestDir); err != nil {
				return nil, nil, err
			}
		} else {
			files = append(files, File{Path: path.Join(guestDir, ".keep"), Mode: 0o644})
		}
		args := []string{"-test.v"}
		if run != "" {
			args = append(args, "-test.run", run)
		}
		stepTimeout := timeout
		if p.Userland {
			// Real applications start slowly under emulation.
			stepTimeout *= 2
		}
		if stepTimeout < 20*time.Second {
			stepTimeout = 20 * time.Second
		}
		// Go's own timeout fires first and prints the goroutines.
		args = append(args, "-test.timeout", (stepTimeout - 10*time.Second).String())
		steps = append(steps, vminit.Step{
			Name:       p.ImportPath,
			Path:       guestBin,
			Args:       args,
			Dir:        guestDir,
			TimeoutSec: int(stepTimeout / time.Second),
		})
	}
	return files, steps, nil
}

// ResolveKernels resolves the wanted kernel series and fetches them.
// If the archive cannot be reached, kernels already in the cache are used.
func ResolveKernels(ctx context.Context, f *debian.Fetcher, want []string, log io.Writer) ([]debian.Kernel, error) {
	avail, err := f.Kernels(ctx, debian.SuiteBackports)
	if err != nil {
		cached, cerr := f.Cached()
		if cerr != nil || len(cached) == 0 {
			return nil, fmt.Errorf("listing kernels: %w", err)
		}
		fmt.Fprintf(log, "warning: cannot list %s (%v); using cached kernels\n", debian.SuiteBackports, err)
		avail = cached
	}
	var ks []debian.Kernel
	for _, w := range want {
		k, err := debian.Resolve(avail, w)
		if err != nil {
			return nil, err
		}
		if k.Vmlinuz == "" {
			fmt.Fprintf(log, "kernel %s -> %s\n", w, k.Package)
		}
		k, err = f.FetchKernel(ctx, k)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// Test runs the kernel test matrix: it builds the test binaries and the
// guest init, fetches the kernels, boots them (Parallel at a time) and
// returns every kernel's result.
func Test(ctx context.Context, o Options) (*Matrix, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	var err error
	if o.SourceDir == "" {
		if o.SourceDir, err = ModuleRoot(ctx); err != nil {
			return nil, err
		}
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = debian.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if o.Kernels == nil {
		o.Kernels = DefaultKernels()
	}
	if o.Packages == nil {
		o.Packages = TestPackages()
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Minute
	}
	work, err := os.MkdirTemp("", "ringfence-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	fetcher := &debian.Fetcher{CacheDir: o.CacheDir, Log: log}
	kernels, err := ResolveKernels(ctx, fetcher, o.Kernels, log)
	if err != nil {
		return nil, err
	}
	pkgs, err := ListTestPackages(ctx, o.SourceDir, o.Packages)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no package with tests matches %s", strings.Join(o.Packages, " "))
	}
	rootfs, err := userlandFor(ctx, o, pkgs, log)
	if err != nil {
		return nil, err
	}
	ctrd, err := containerdFor(ctx, o, pkgs, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "building %d test binaries and the guest init\n", len(pkgs))
	initBin, err := BuildInit(ctx, o.SourceDir, work)
	if err != nil {
		return nil, err
	}
	files, steps, err := BuildTests(ctx, o.SourceDir, work, pkgs, o.Run, o.Timeout)
	if err != nil {
		return nil, err
	}
	files = append(files, ctrd...)
	var env []string
	if rootfs != "" {
		// Application tests run the real command: a static ringfence
		// on every step's PATH.
		bin := filepath.Join(work, "ringfence")
		if err := goBuild(ctx, o.SourceDir, "build", "-o", bin, "./cmd/ringfence"); err != nil {
			return nil, err
		}
		files = append(files, File{Path: GuestBinDir + "/ringfence", HostPath: bin, Mode: 0o755})
		env = append(env, guestPath)
	}
	env = append(env, ForwardedEnv(os.Environ())...)

	// The guest's deadline: every step's own, plus time to boot.
	guestSec := 30
	for _, st := range steps {
		guestSec += st.TimeoutSec + 5
	}
	m := &Matrix{Results: make([]*Result, len(kernels))}
	// Workers take kernels in order, so the boots start oldest first.
	next := make(chan int, len(kernels))
	for i := range kernels {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for w := 0; w < o.Parallel && w < len(kernels); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				k := kernels[i]
				logMu.Lock()
				fmt.Fprintf(log, "booting %s\n", k.Release)
				logMu.Unlock()
				mach := &Machine{
					Kernel:   k,
					Init:     initBin,
					Userland: rootfs,
					Files:    files,
					Config:   vminit.Config{TimeoutSec: guestSec, Steps: steps, Env: env},
					Timeout:  time.Duration(guestSec)*time.Second + time.Minute,
				}
				if o.Console != nil {
					mach.Console = &prefixWriter{w: o.Console, mu: &logMu, prefix: k.Version.String() + "| "}
				}
				r, err := mach.Boot(ctx, work)
				if err != nil {
					r.Problems = append(r.Problems, err.Error())
				}
				m.Results[i] = r
				logMu.Lock()
				fmt.Fprintf(log, "%s done in %.1fs\n", k.Release, r.Duration.Seconds())
				logMu.Unlock()
			}
		}()
	}
	wg.Wait()
	m.Wall = time.Since(start)
	return m, nil
}

// userlandFor marks the packages of pkgs that need the guest userland
// (UserlandPackages) and returns the image's path if any does, building
// it first if it is not cached; else "".
func userlandFor(ctx context.Context, o Options, pkgs []Package, log io.Writer) (string, error) {
	need, err := ListTestPackages(ctx, o.SourceDir, UserlandPackages())
	if err != nil {
		return "", err
	}
	needs := map[string]bool{}
	for _, p := range need {
		needs[p.ImportPath] = true
	}
	for i := range pkgs {
		pkgs[i].Userland = needs[pkgs[i].ImportPath]
	}
	for _, p := range pkgs {
		if p.Userland {
			img, err := userland.Ensure(ctx, o.CacheDir, userland.Default(), log)
			if err != nil {
				return "", fmt.Errorf("%s needs the guest userland: %w", p.ImportPath, err)
			}
			return img.Path, nil
		}
	}
	return "", nil
}

// containerdFor returns the guest files of the containerds built from
// source (BuildContainerd) if a package of pkgs needs them
// (ContainerdPackages), building them first if they are not cached; else
// nil.
func containerdFor(ctx context.Context, o Options, pkgs []Package, log io.Writer) ([]File, error) {
	need, err := ListTestPackages(ctx, o.SourceDir, ContainerdPackages())
	if err != nil {
		return nil, err
	}
	for _, n := range need {
		for _, p := range pkgs {
			if p.ImportPath == n.ImportPath {
				var files []File
				for _, v := range ContainerdVersions() {
					f, err := BuildContainerd(ctx, o.CacheDir, v, log)
					if err != nil {
						return nil, fmt.Errorf("%s needs containerd %s: %w", p.ImportPath, v, err)
					}
					files = append(files, f...)
				}
				return files, nil
			}
		}
	}
	return nil, nil
}

// prefixWriter writes whole lines to w with a prefix, under a shared lock.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(p.buf[:i]), "\r")
		p.buf = p.buf[i+1:]
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, line)
		p.mu.Unlock()
	}
	return len(b), nil
}

// Counts sums a result's test outcomes. A step that failed without a
// FAIL line (a crash, a timeout, a build of the wrong kernel) counts as
// one failure.
type Counts struct{ Passed, Failed, Skipped int }

// Count returns r's test counts.
func (r *Result) Count() Counts {
	var c Counts
	for _, s := range r.Steps {
		failed := 0
		for _, t := range s.Tests {
			switch t.Status {
			case "PASS":
				c.Passed++
			case "FAIL":
				c.Failed++
				failed++
			case "SKIP":
				c.Skipped++
			}
		}
		if failed == 0 && (s.Exit != 0 || !s.Ended) {
			c.Failed++
		}
	}
	return c
}

// FilterProblem returns a complaint if the guest's filter probe disagrees
// with the kernel's version: kernels from abi.FilterSince() on must have
// io_uring BPF filters, older ones must not. It returns "" if they agree.
func (r *Result) FilterProblem() string {
	if r.Filters == "" {
		return ""
	}
	want := "no"
	if !(abi.Version{Major: r.Kernel.Version.Major, Minor: r.Kernel.Version.Minor}).Less(abi.FilterSince()) {
		want = "yes"
	}
	if r.Filters != want {
		return fmt.Sprintf("io_uring BPF filters: probe says %q, expected %q for %s", r.Filters, want, r.Kernel.Version)
	}
	return ""
}

// OK reports whether r is a clean run: booted, every step ended with
// status 0, no failed test, the filter probe as expected.
func (r *Result) OK() bool {
	return len(r.Problems) == 0 && r.Count().Failed == 0 && r.FilterProblem() == "" && r.Release != "" && r.Done
}

// OK reports whether every kernel's run is clean.
func (m *Matrix) OK() bool {
	for _, r := range m.Results {
		if !r.OK() {
			return false
		}
	}
	return len(m.Results) > 0
}

// Total sums the counts over all kernels.
func (m *Matrix) Total() Counts {
	var t Counts
	for _, r := range m.Results {
		c := r.Count()
		t.Passed += c.Passed
		t.Failed += c.Failed
		t.Skipped += c.Skipped
	}
	return t
}

// WriteReport prints the failures (with the output of the steps that
// failed), a per-kernel table, and the closing line "N passed, N failed"
// (", N skipped" if any).
func (m *Matrix) WriteReport(w io.Writer, verbose bool) {
	for _, r := range m.Results {
		var lines []string
		lines = append(lines, r.Problems...)
		if p := r.FilterProblem(); p != "" {
			lines = append(lines, p)
		}
		for _, s := range r.Steps {
			var failed []string
			for _, t := range s.Tests {
				if t.Status == "FAIL" {
					failed = append(failed, t.Name)
				}
			}
			if len(failed) > 0 || s.Exit != 0 || !s.Ended {
				lines = append(lines, fmt.Sprintf("%s: exit %d, failed: %s", s.Name, s.Exit, strings.Join(failed, " ")))
				if !verbose {
					// Verbose runs streamed it already.
					lines = append(lines, indent(string(s.Output)))
				}
			}
		}
		if r.Release == "" && !verbose {
			lines = append(lines, "console:", indent(string(r.Console)))
		}
		if len(lines) > 0 {
			fmt.Fprintf(w, "--- %s (%s): FAILED\n", r.Kernel.Version, r.Kernel.Package)
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\trelease\tfilters\tpassed\tfailed\tskipped\ttime\tresult")
	for _, r := range m.Results {
		c := r.Count()
		res := "ok"
		if !r.OK() {
			res = "FAIL"
		}
		filters := r.Filters
		if filters == "" {
			filters = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1fs\t%s\n", r.Kernel.Version, r.Kernel.Release, filters, c.Passed, c.Failed, c.Skipped, r.Duration.Seconds(), res)
	}
	tw.Flush()
	fmt.Fprintf(w, "matrix wall time %.1fs\n", m.Wall.Seconds())
	t := m.Total()
	// A kernel that failed without a failing test still fails the line.
	for _, r := range m.Results {
		if !r.OK() && r.Count().Failed == 0 {
			t.Failed++
		}
	}
	line := fmt.Sprintf("%d passed, %d failed", t.Passed, t.Failed)
	if t.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", t.Skipped)
	}
	fmt.Fprintln(w, line)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (no output)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Run boots kernel k with files added to the guest and runs args[0] (a
// guest path, usually one of files) with args[1:]; it returns the program's
// output and exit status. timeout bounds the whole boot (0: 5 minutes).
func Run(ctx context.Context, k debian.Kernel, files []File, args []string, timeout time.Duration) (output []byte, exit int, err error) {
	if len(args) == 0 {
		return nil, -1, fmt.Errorf("vm.Run: no command")
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	src, err := ModuleRoot(ctx)
	if err != nil {
		return nil, -1, err
	}
	work, err := os.MkdirTemp("", "ringfence-vm-")
	if err != nil {
		return nil, -1, err
	}
	defer os.RemoveAll(work)
	initBin, err := BuildInit(ctx, src, work)
	if err != nil {
		return nil, -1, err
	}
	guestSec := int((timeout - 15*time.Second) / time.Second)
	if guestSec < 5 {
		guestSec = int(timeout / time.Second)
	}
	mach := &Machine{
		Kernel: k,
		Init:   initBin,
		Files:  files,
		Config: vminit.Config{
			TimeoutSec: guestSec,
			Steps:      []vminit.Step{{Name: path.Base(args[0]), Path: args[0], Args: args[1:], TimeoutSec: guestSec}},
		},
		Timeout: timeout,
	}
	r, err := mach.Boot(ctx, work)
	if err != nil {
		return nil, -1, err
	}
	if len(r.Steps) != 1 || !r.Steps[0].Ended {
		msg := strings.Join(r.Problems, "; ")
		return r.Console, -1, fmt.Errorf("kernel %s: the command did not finish: %s", k.Release, msg)
	}
	return r.Steps[0].Output, r.Steps[0].Exit, nil
}

// ForwardedEnvPrefix starts the names of host environment variables that
// "vm test" passes into every guest step, such as the kernel tests' seed
// RINGFENCE_KT_SEED.
const ForwardedEnvPrefix = "RINGFENCE_KT_"

// ForwardedEnv returns the entries of environ ("KEY=VALUE") whose names
// start with ForwardedEnvPrefix, in order.
func ForwardedEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, ForwardedEnvPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

// Figures sums the figures r's tests reported, by name, and returns the
// names in the order they first appeared.
func (r *Result) Figures() (names []string, sums map[string]int) {
	sums = map[string]int{}
	for _, s := range r.Steps {
		for _, f := range s.Figures {
			if _, ok := sums[f.Name]; !ok {
				names = append(names, f.Name)
			}
			sums[f.Name] += f.Value
		}
	}
	return names, sums
}

// WriteMarkdown prints the matrix as the README shows it: a Markdown table
// with a row per kernel (filters, tests passed, failed and skipped, boot
// time, and every figure the tests reported, summed per kernel) and a line
// with the totals and the wall time. Rerunning "ringfence vm test
// --markdown" reproduces the README's figures.
func (m *Matrix) WriteMarkdown(w io.Writer) {
	var names []string
	seen := map[string]bool{}
	sums := make([]map[string]int, len(m.Results))
	for i, r := range m.Results {
		var ns []string
		ns, sums[i] = r.Figures()
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	head := []string{"kernel", "filters", "passed", "failed", "skipped", "time"}
	head = append(head, names...)
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))
	for i, r := range m.Results {
		c := r.Count()
		filters := r.Filters
		if filters == "" {
			filters = "?"
		}
		row := []string{r.Kernel.Version.String(), filters, fmt.Sprint(c.Passed), fmt.Sprint(c.Failed), fmt.Sprint(c.Skipped),
			fmt.Sprintf("%.0f s", r.Duration.Seconds())}
		for _, n := range names {
			if v, ok := sums[i][n]; ok {
				row = append(row, thousands(v))
			} else {
				row = append(row, "—")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	t := m.Total()
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped; matrix wall time %.0f s.\n", t.Passed, t.Failed, t.Skipped, m.Wall.Seconds())
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
