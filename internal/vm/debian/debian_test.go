package debian

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

func TestParseKernelPackage(t *testing.T) {
	for _, c := range []struct {
		name    string
		ok      bool
		version Version
		release string
	}{
		{"linux-binary-7.0.13+deb13-amd64", true, Version{7, 0, 13}, "7.0.13+deb13-amd64"},
		{"linux-binary-6.19.14+deb13-amd64", true, Version{6, 19, 14}, "6.19.14+deb13-amd64"},
		{"linux-binary-7.3.4+deb14-arm64", true, Version{7, 3, 4}, "7.3.4+deb14-arm64"},
		{"linux-binary-7.0.13+deb13-cloud-amd64", false, Version{}, ""},
		{"linux-binary-7.0.13+deb13-rt-amd64", false, Version{}, ""},
		{"linux-binary-unsigned-7.2.12+deb13-amd64", false, Version{}, ""},
		{"linux-image-7.0.13+deb13-amd64", false, Version{}, ""},
		{"linux-binary-7.0+deb13-amd64", false, Version{}, ""},
		{"linux-binary-99999999999999999999.0.1+deb13-amd64", false, Version{}, ""},
		{"", false, Version{}, ""},
	} {
		k, ok := ParseKernelPackage(c.name)
		if ok != c.ok || k.Version != c.version || k.Release != c.release || (ok && k.Package != c.name) {
			t.Errorf("ParseKernelPackage(%q) = %+v, %v", c.name, k, ok)
		}
	}
}

func kernels(t *testing.T, versions ...string) []Kernel {
	var ks []Kernel
	for _, v := range versions {
		k, ok := ParseKernelPackage("linux-binary-" + v + "+deb13-amd64")
		if !ok {
			t.Fatal(v)
		}
		ks = append(ks, k)
	}
	return ks
}

func TestResolve(t *testing.T) {
	ks := kernels(t, "7.0.4", "7.0.13", "7.0.9", "7.1.3", "7.1.13", "6.19.14", "7.10.1")
	for _, c := range []struct{ want, got, err string }{
		{"7.0", "7.0.13", ""}, // numeric, not string, order
		{"7.0.4", "7.0.4", ""},
		{"7.1", "7.1.13", ""},
		{"6.19", "6.19.14", ""},
		{"7.1.4", "", "not available; have 7.0.4, 7.0.13"},
		{"7.2", "", "not available"},
		{"7", "", "want MAJOR.MINOR"},
		{"7.x", "", `"x" is not a number`},
		{"7.0.1.2", "", "want MAJOR.MINOR"},
	} {
		k, err := Resolve(ks, c.want)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%q) error = %v, want %q", c.want, err, c.err)
			}
			continue
		}
		if err != nil || k.Version.String() != c.got {
			t.Errorf("Resolve(%q) = %v, %v; want %s", c.want, k.Version, err, c.got)
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(EnvCache, "/x/y")
	if d, err := DefaultCacheDir(); err != nil || d != "/x/y" {
		t.Errorf("with %s: %q, %v", EnvCache, d, err)
	}
	t.Setenv(EnvCache, "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := DefaultCacheDir(); err != nil || d != "/xdg/ringfence" {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
}

func TestCached(t *testing.T) {
	dir := t.TempDir()
	f := &Fetcher{CacheDir: dir}
	if ks, err := f.Cached(); err != nil || len(ks) != 0 {
		t.Fatalf("empty cache: %v, %v", ks, err)
	}
	for _, rel := range []string{"7.1.13+deb13-amd64", "6.19.14+deb13-amd64", "7.0.4+deb13-amd64"} {
		d := filepath.Join(dir, "kernels", rel)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "vmlinuz"), []byte("x"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "kernels", "7.2.1+deb13-amd64"), 0o755) // no image: not cached
	os.MkdirAll(filepath.Join(dir, "kernels", "junk"), 0o755)
	ks, err := f.Cached()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range ks {
		got = append(got, k.Version.String())
		if k.Vmlinuz != filepath.Join(dir, "kernels", k.Release, "vmlinuz") {
			t.Errorf("%s: Vmlinuz %q", k.Release, k.Vmlinuz)
		}
	}
	if strings.Join(got, " ") != "6.19.14 7.0.4 7.1.13" {
		t.Errorf("cached = %v", got)
	}
	// A cached kernel is returned without apt.
	k, err := f.FetchKernel(context.Background(), ks[1])
	if err != nil || k.Vmlinuz == "" {
		t.Errorf("FetchKernel of a cached kernel: %+v, %v", k, err)
	}
}

func TestCachedHeaders(t *testing.T) {
	dir := t.TempDir()
	f := &Fetcher{CacheDir: dir}
	if _, ok := f.cachedHeaders(SuiteSid); ok {
		t.Error("headers found in an empty cache")
	}
	for _, v := range []string{"7.2.9-1", "7.2.13-1", "7.10.1-1"} {
		d := filepath.Join(dir, "headers", SuiteSid, v)
		os.MkdirAll(d, 0o755)
		if v != "7.10.1-1" {
			os.WriteFile(filepath.Join(d, "complete"), nil, 0o644)
		}
	}
	h, ok := f.cachedHeaders(SuiteSid)
	if !ok || h.Version != "7.2.13-1" || h.Include != filepath.Join(dir, "headers", SuiteSid, "7.2.13-1", "usr", "include") {
		t.Errorf("cachedHeaders = %+v, %v; want the newest complete one, 7.2.13-1", h, ok)
	}
}

func TestAptOptionsArePrivate(t *testing.T) {
	f := &Fetcher{CacheDir: "/cache"}
	opts := strings.Join(f.aptOptions("sid"), " ")
	for _, want := range []string{
		"Dir::Etc::sourcelist=/cache/apt/sid/sources.list",
		"Dir::Etc::sourceparts=/dev/null",
		"Dir::State::Lists=/cache/apt/sid/lists",
		"Dir::State::status=/cache/apt/sid/status",
		"Dir::Cache=/cache/apt/sid/cache",
	} {
		if !strings.Contains(opts, want) {
			t.Errorf("apt options lack %q: %s", want, opts)
		}
	}
	if strings.Contains(opts, "/var/lib/apt") || strings.Contains(opts, "/etc/apt") {
		t.Errorf("apt options name the system's apt state: %s", opts)
	}
}

func TestFindVmlinuz(t *testing.T) {
	for _, c := range []struct {
		files []string
		want  string
		err   string
	}{
		{[]string{"usr/lib/modules/7.3.4+deb13-amd64/vmlinuz", "usr/share/doc/x"}, "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz", ""},
		{[]string{"boot/vmlinuz-6.1.0-amd64", "boot/config-6.1.0-amd64"}, "boot/vmlinuz-6.1.0-amd64", ""},
		{[]string{"boot/vmlinuz-a", "boot/vmlinuz-b"}, "", "several kernel images"},
		{[]string{"usr/share/doc/x"}, "", "no kernel image"},
	} {
		root := t.TempDir()
		for _, f := range c.files {
			os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
			os.WriteFile(filepath.Join(root, f), nil, 0o644)
		}
		got, err := findVmlinuz(root)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.files, err, c.err)
			}
		} else if err != nil || got != filepath.Join(root, c.want) {
			t.Errorf("%v: %q, %v", c.files, got, err)
		}
	}
}

// TestKernelsFromArchive lists the real archive's kernels through the
// private apt state (using the shared cache, so it is quick once the
// lists are there). It needs apt and the network, so it runs only when
// asked (vmtest.RequireExternal).
func TestKernelsFromArchive(t *testing.T) {
	vmtest.RequireExternal(t, "asks Debian's archive", "apt-get")
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := &Fetcher{CacheDir: dir}
	ks, err := f.Kernels(ctx, SuiteBackports)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"6.19", "7.0"} {
		k, err := Resolve(ks, want)
		if err != nil {
			t.Errorf("%s: %v", want, err)
			continue
		}
		if k.Suite != SuiteBackports || !strings.HasPrefix(k.Package, "linux-binary-"+want+".") {
			t.Errorf("%s resolved to %+v", want, k)
		}
	}
}

func FuzzParseKernelPackage(f *testing.F) {
	f.Add("linux-binary-7.0.13+deb13-amd64", "7.0")
	f.Add("linux-binary-6.19.14+deb13-cloud-amd64", "6.19.14")
	f.Fuzz(func(t *testing.T, name, want string) {
		k, ok := ParseKernelPackage(name)
		if ok {
			if k.Package != name || "linux-binary-"+k.Release != name || !strings.HasPrefix(k.Release, k.Version.String()+"+") {
				t.Errorf("ParseKernelPackage(%q) = %+v", name, k)
			}
		}
		var ks []Kernel
		if ok {
			ks = append(ks, k)
		}
		if r, err := Resolve(ks, want); err == nil && (!ok || r != k) {
			t.Errorf("Resolve(%v, %q) = %+v", ks, want, r)
		}
	})
}

func TestParseKernelPackageLeadingZero(t *testing.T) {
	if k, ok := ParseKernelPackage("linux-binary-007.0.1+deb13-amd64"); ok {
		t.Errorf("accepted a version with a leading zero: %+v", k)
	}
}
