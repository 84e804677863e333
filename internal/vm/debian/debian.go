// Package debian fetches Debian packages (kernels, kernel headers) with
// apt, into a private cache, without touching the machine's own apt
// configuration, lists or package database.
//
// Each suite gets its own apt state under the cache directory: a sources
// file naming only that suite (signed by Debian's archive keyring), its own
// lists and package cache. apt-get and dpkg-deb run as child processes;
// nothing here needs root. What was fetched is cached: a kernel is
// downloaded and unpacked once, and the lists are refreshed only when they
// are older than Fetcher.MaxListAge or a download fails.
package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mirror is the Debian archive the fetcher uses.
const Mirror = "https://deb.debian.org/debian"

// Keyring is the keyring that signs Debian's archive.
const Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Suites ringfence fetches from.
const (
	SuiteBackports = "trixie-backports" // the kernels
	SuiteSid       = "sid"              // linux-libc-dev with the 7.x uapi headers
)

// EnvCache names the environment variable that overrides the cache
// directory.
const EnvCache = "RINGFENCE_CACHE"

// DefaultCacheDir returns $RINGFENCE_CACHE if set, else
// $XDG_CACHE_HOME/ringfence, else ~/.cache/ringfence (what
// os.UserCacheDir says, plus "ringfence").
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set %s or HOME: %w", EnvCache, err)
	}
	return filepath.Join(d, "ringfence"), nil
}

// Fetcher fetches packages with apt into CacheDir.
type Fetcher struct {
	// CacheDir holds everything fetched, per suite and per kernel.
	CacheDir string
	// Log, if not nil, receives one line per slow step (update,
	// download).
	Log io.Writer
	// MaxListAge is how old a suite's lists may be before they are
	// refreshed; 0 means 12 hours.
	MaxListAge time.Duration
	// Arch is the Debian architecture; "" means amd64.
	Arch string
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		fmt.Fprintf(f.Log, format+"\n", args...)
	}
}

func (f *Fetcher) arch() string {
	if f.Arch == "" {
		return "amd64"
	}
	return f.Arch
}

// aptDir is the private apt state of a suite.
func (f *Fetcher) aptDir(suite string) string { return filepath.Join(f.CacheDir, "apt", suite) }

// aptOptions returns the options that make apt use only the suite's private
// state.
func (f *Fetcher) aptOptions(suite string) []string {
	d := f.aptDir(suite)
	opts := []string{
		"Dir::Etc::sourcelist=" + filepath.Join(d, "sources.list"),
		"Dir::Etc::sourceparts=/dev/null",
		"Dir::Etc::preferences=/dev/null",
		"Dir::Etc::preferencesparts=/dev/null",
		"Dir::State=" + filepath.Join(d, "state"),
		"Dir::State::Lists=" + filepath.Join(d, "lists"),
		"Dir::State::status=" + filepath.Join(d, "status"),
		"Dir::Cache=" + filepath.Join(d, "cache"),
		"Acquire::Languages=none",
		"APT::Architectures=" + f.arch(),
		"APT::Architecture=" + f.arch(),
	}
	if os.Geteuid() == 0 {
		// Downloads go to directories the _apt user cannot write.
		opts = append(opts, "APT::Sandbox::User=root")
	}
	var args []string
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

// prepare creates the suite's private apt state.
func (f *Fetcher) prepare(suite string) error {
	d := f.aptDir(suite)
	for _, sub := range []string{"lists/partial", "cache/archives/partial", "state"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Stat(Keyring); err != nil {
		return fmt.Errorf("the Debian archive keyring is missing (%v): install the debian-archive-keyring package", err)
	}
	src := fmt.Sprintf("deb [signed-by=%s] %s %s main\n", Keyring, Mirror, suite)
	if err := os.WriteFile(filepath.Join(d, "sources.list"), []byte(src), 0o644); err != nil {
		return err
	}
	status := filepath.Join(d, "status")
	if _, err := os.Stat(status); err != nil {
		return os.WriteFile(status, nil, 0o644)
	}
	return nil
}

// apt runs an apt tool (apt-get, apt-cache) for suite in dir and returns
// its standard output. It retries while another process holds apt's lock
// on the same private state.
func (f *Fetcher) apt(ctx context.Context, suite, dir, tool string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("%s not found: ringfence fetches Debian packages with apt (install apt)", tool)
	}
	full := append(f.aptOptions(suite), args...)
	for attempt := 0; ; attempt++ {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, tool, full...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
		err := cmd.Run()
		if err == nil {
			return stdout.Bytes(), nil
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Could not get lock") && attempt < 120 && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		return nil, fmt.Errorf("%s %s (suite %s): %v: %s", tool, strings.Join(args, " "), suite, err, msg)
	}
}

// Update refreshes the suite's lists if they are missing, older than
// MaxListAge, or force is set.
func (f *Fetcher) Update(ctx context.Context, suite string, force bool) error {
	if err := f.prepare(suite); err != nil {
		return err
	}
	stamp := filepath.Join(f.aptDir(suite), "updated")
	age := f.MaxListAge
	if age == 0 {
		age = 12 * time.Hour
	}
	if st, err := os.Stat(stamp); err == nil && !force && time.Since(st.ModTime()) < age {
		return nil
	}
	f.logf("apt-get update (%s)", suite)
	if _, err := f.apt(ctx, suite, f.aptDir(suite), "apt-get", "-q", "update"); err != nil {
		return err
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// Version is a kernel's upstream version, such as 7.0.13.
type Version struct{ Major, Minor, Patch int }

// String formats v as "7.0.13".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions numerically.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// Kernel is a Debian kernel package.
type Kernel struct {
	// Version is the upstream version.
	Version Version
	// Release is what uname -r prints, e.g. "7.0.13+deb13-amd64".
	Release string
	// Package is the Debian package holding the image, e.g.
	// "linux-binary-7.0.13+deb13-amd64".
	Package string
	// Suite is where the package comes from.
	Suite string
	// Vmlinuz is the path of the unpacked kernel image once fetched.
	Vmlinuz string
}

// kernelPackage matches the package that holds a generic kernel image.
// Debian calls it linux-binary-RELEASE since 6.19 in trixie-backports;
// older suites have linux-image-RELEASE-unsigned.
var kernelPackage = regexp.MustCompile(`^linux-binary-((0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\+deb\d+-(amd64|arm64|ppc64el|s390x|riscv64))$`)

// ParseKernelPackage parses a package name such as
// "linux-binary-7.0.13+deb13-amd64" into a Kernel (without Suite or
// Vmlinuz). ok is false for other packages (cloud, rt, unsigned, dbg...).
func ParseKernelPackage(name string) (k Kernel, ok bool) {
	m := kernelPackage.FindStringSubmatch(name)
	if m == nil {
		return k, false
	}
	var n [3]int
	for i := range n {
		v, err := strconv.Atoi(m[2+i])
		if err != nil {
			return k, false
		}
		n[i] = v
	}
	return Kernel{Version: Version{n[0], n[1], n[2]}, Release: m[1], Package: name}, true
}

// Kernels lists the generic kernel images of suite for the fetcher's
// architecture, oldest first. It refreshes stale lists first.
func (f *Fetcher) Kernels(ctx context.Context, suite string) ([]Kernel, error) {
	if err := f.Update(ctx, suite, false); err != nil {
		return nil, err
	}
	out, err := f.apt(ctx, suite, f.aptDir(suite), "apt-cache", "search", "--names-only", `^linux-binary-[0-9.]+\+deb[0-9]+-`+f.arch()+`$`)
	if err != nil {
		return nil, err
	}
	var ks []Kernel
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if k, ok := ParseKernelPackage(name); ok && strings.HasSuffix(k.Release, "-"+f.arch()) {
			k.Suite = suite
			ks = append(ks, k)
		}
	}
	sortKernels(ks)
	return ks, nil
}

func sortKernels(ks []Kernel) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Version != ks[j].Version {
			return ks[i].Version.Less(ks[j].Version)
		}
		return ks[i].Release < ks[j].Release
	})
}

// Resolve picks the kernel for want among ks: "7.0" means the newest
// 7.0.x, "7.0.4" exactly 7.0.4. The error lists what is available.
func Resolve(ks []Kernel, want string) (Kernel, error) {
	parts := strings.Split(want, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Kernel{}, fmt.Errorf("kernel %q: want MAJOR.MINOR (newest of that series) or MAJOR.MINOR.PATCH", want)
	}
	var n []int
	for _, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Kernel{}, fmt.Errorf("kernel %q: %q is not a number", want, p)
		}
		n = append(n, v)
	}
	var best *Kernel
	for i := range ks {
		v := ks[i].Version
		if v.Major != n[0] || v.Minor != n[1] || (len(n) == 3 && v.Patch != n[2]) {
			continue
		}
		if best == nil || best.Version.Less(v) {
			best = &ks[i]
		}
	}
	if best == nil {
		var have []string
		for _, k := range ks {
			have = append(have, k.Version.String())
		}
		return Kernel{}, fmt.Errorf("kernel %q: not available; have %s", want, strings.Join(have, ", "))
	}
	return *best, nil
}

// kernelDir is where a kernel's image is cached.
func (f *Fetcher) kernelDir(release string) string {
	return filepath.Join(f.CacheDir, "kernels", release)
}

// Cached lists the kernels already unpacked in the cache, oldest first.
func (f *Fetcher) Cached() ([]Kernel, error) {
	ents, err := os.ReadDir(filepath.Join(f.CacheDir, "kernels"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ks []Kernel
	for _, e := range ents {
		k, ok := ParseKernelPackage("linux-binary-" + e.Name())
		if !ok {
			continue
		}
		img := filepath.Join(f.kernelDir(k.Release), "vmlinuz")
		if _, err := os.Stat(img); err != nil {
			continue
		}
		k.Vmlinuz = img
		if b, err := os.ReadFile(filepath.Join(f.kernelDir(k.Release), "suite")); err == nil {
			k.Suite = strings.TrimSpace(string(b))
		}
		ks = append(ks, k)
	}
	sortKernels(ks)
	return ks, nil
}

// FetchKernel makes sure k's image is in the cache and returns k with
// Vmlinuz set. A cached image is used without any network access.
func (f *Fetcher) FetchKernel(ctx context.Context, k Kernel) (Kernel, error) {
	dir := f.kernelDir(k.Release)
	img := filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(img); err == nil {
		k.Vmlinuz = img
		return k, nil
	}
	root, err := f.downloadAndExtract(ctx, k.Suite, k.Package)
	if err != nil {
		return k, err
	}
	defer os.RemoveAll(filepath.Dir(root))
	found, err := findVmlinuz(root)
	if err != nil {
		return k, fmt.Errorf("%s: %w", k.Package, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return k, err
	}
	if err := os.WriteFile(filepath.Join(dir, "suite"), []byte(k.Suite+"\n"), 0o644); err != nil {
		return k, err
	}
	if err := os.Rename(found, img); err != nil {
		return k, err
	}
	k.Vmlinuz = img
	return k, nil
}

// findVmlinuz finds the kernel image in an unpacked kernel package: at
// boot/vmlinuz-* or usr/lib/modules/*/vmlinuz.
func findVmlinuz(root string) (string, error) {
	for _, pat := range []string{"boot/vmlinuz-*", "usr/lib/modules/*/vmlinuz", "lib/modules/*/vmlinuz"} {
		m, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil {
			return "", err
		}
		if len(m) == 1 {
			return m[0], nil
		}
		if len(m) > 1 {
			return "", fmt.Errorf("several kernel images: %s", strings.Join(m, ", "))
		}
	}
	return "", errors.New("no kernel image (boot/vmlinuz-* or usr/lib/modules/*/vmlinuz) in the package")
}

// downloadAndExtract downloads pkg from suite and unpacks it into a new
// temporary directory under the cache, which the caller removes. If the
// download fails on lists that were not refreshed now, it refreshes them
// and tries once more (the suite may have moved on).
func (f *Fetcher) downloadAndExtract(ctx context.Context, suite, pkg string) (string, error) {
	if err := f.Update(ctx, suite, false); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(f.CacheDir, "tmp"), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Join(f.CacheDir, "tmp"), "fetch-")
	if err != nil {
		return "", err
	}
	f.logf("apt-get download %s (%s)", pkg, suite)
	if _, err := f.apt(ctx, suite, tmp, "apt-get", "-q", "download", pkg); err != nil {
		if uerr := f.Update(ctx, suite, true); uerr != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("%w; and refreshing the lists failed: %v", err, uerr)
		}
		if _, err := f.apt(ctx, suite, tmp, "apt-get", "-q", "download", pkg); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("apt-get download %s: expected one .deb, found %d", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := extract(ctx, debs[0], root); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return root, nil
}

// extract unpacks a .deb with dpkg-deb -x.
func extract(ctx context.Context, deb, dir string) error {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return errors.New("dpkg-deb not found: install dpkg")
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", filepath.Base(deb), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Headers is an unpacked linux-libc-dev package.
type Headers struct {
	// Version is the Debian package version, e.g. "7.2.13-1".
	Version string
	// Include is the directory to pass to the C compiler with -I
	// (the package's usr/include).
	Include string
}

// LibcDev fetches linux-libc-dev (the kernel's uapi headers) from suite,
// once per package version, and returns where its headers are.
func (f *Fetcher) LibcDev(ctx context.Context, suite string) (Headers, error) {
	const pkg = "linux-libc-dev"
	err := f.Update(ctx, suite, false)
	var out []byte
	if err == nil {
		out, err = f.apt(ctx, suite, f.aptDir(suite), "apt-cache", "show", "--no-all-versions", pkg)
	}
	if err != nil {
		// Offline: use the newest headers already unpacked.
		if h, ok := f.cachedHeaders(suite); ok {
			f.logf("warning: %v; using cached %s %s", err, pkg, h.Version)
			return h, nil
		}
		return Headers{}, err
	}
	version := ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = strings.TrimSpace(v)
			break
		}
	}
	if version == "" {
		return Headers{}, fmt.Errorf("apt-cache show %s (suite %s): no Version field", pkg, suite)
	}
	dir := filepath.Join(f.CacheDir, "headers", suite, strings.ReplaceAll(version, ":", "_"))
	inc := filepath.Join(dir, "usr", "include")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return Headers{Version: version, Include: inc}, nil
	}
	root, err := f.downloadAndExtract(ctx, suite, pkg+"="+version)
	if err != nil {
		return Headers{}, err
	}
	defer os.RemoveAll(filepath.Dir(root))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Headers{}, err
	}
	if err := os.Rename(root, dir); err != nil {
		// Another process may have unpacked the same version meanwhile.
		if _, serr := os.Stat(filepath.Join(dir, "complete")); serr == nil {
			return Headers{Version: version, Include: inc}, nil
		}
		// Or left a partial copy: replace it.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return Headers{}, rerr
		}
		if err := os.Rename(root, dir); err != nil {
			return Headers{}, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
		return Headers{}, err
	}
	return Headers{Version: version, Include: inc}, nil
}

// cachedHeaders returns the newest complete linux-libc-dev unpacked for
// suite, by Debian version order of the simple kind "7.2.13-1".
func (f *Fetcher) cachedHeaders(suite string) (Headers, bool) {
	dirs, _ := filepath.Glob(filepath.Join(f.CacheDir, "headers", suite, "*", "complete"))
	var best Headers
	var bestV Version
	for _, c := range dirs {
		dir := filepath.Dir(c)
		v := filepath.Base(dir)
		up, _, _ := strings.Cut(v, "-")
		k, ok := ParseKernelPackage("linux-binary-" + up + "+deb1-" + f.arch())
		if !ok {
			continue
		}
		if best.Version == "" || bestV.Less(k.Version) {
			best = Headers{Version: v, Include: filepath.Join(dir, "usr", "include")}
			bestV = k.Version
		}
	}
	return best, best.Version != ""
}
