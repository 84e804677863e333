package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/vm/userland"
)

func runVM(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(&env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, append([]string{"vm"}, args...))
	return code, out.String(), errb.String()
}

func TestVMUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, exitUsage, "usage: ringfence vm COMMAND"},
		{[]string{"help"}, exitOK, "  test "},
		{[]string{"help", "test"}, exitOK, "needs the ringfence source tree"},
		{[]string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{[]string{"tset"}, exitUsage, `did you mean test?`},
		{[]string{"test", "--run", "("}, exitUsage, "--run: error parsing regexp"},
		{[]string{"test", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"test", "--kernels", ","}, exitUsage, "empty kernel list"},
		{[]string{"test", "-h"}, exitOK, "--kernels KERNELS"},
		{[]string{"kernels", "--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"run"}, exitUsage, "no command"},
		{[]string{"run", "--"}, exitUsage, "no command"},
		{[]string{"run", "--timeout", "0s", "--", "true"}, exitUsage, "--timeout must be at least 1s"},
		{[]string{"run", "-h"}, exitOK, "--no-userland"},
		{[]string{"image", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"image", "-h"}, exitOK, "--packages"},
	} {
		code, out, errs := runVM(c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("vm %v: exit %d, want %d; output %q does not contain %q", c.args, code, c.code, out+errs, c.want)
		}
	}
}

func TestVMKernelsOffline(t *testing.T) {
	dir := t.TempDir()
	for _, rel := range []string{"7.0.4+deb13-amd64", "7.0.13+deb13-amd64"} {
		d := filepath.Join(dir, "kernels", rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "vmlinuz"), []byte("x"), 0o644)
	}
	code, out, errs := runVM("kernels", "--offline", "--cache", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], dir) {
		t.Fatalf("output:\n%s", out)
	}
	if !strings.HasPrefix(lines[1], "7.0.4 ") || strings.Contains(lines[1], "default") || !strings.Contains(lines[1], "cached") {
		t.Errorf("line %q: want 7.0.4, cached, not the default", lines[1])
	}
	if !strings.HasPrefix(lines[2], "7.0.13 ") || !strings.Contains(lines[2], "cached, default for 7.0") {
		t.Errorf("line %q: want 7.0.13, cached, default for 7.0", lines[2])
	}
}

// TestVMImageCached shows a cached image without building anything.
func TestVMImageCached(t *testing.T) {
	dir := t.TempDir()
	s := userland.Default()
	d := filepath.Join(dir, "userland", s.Key())
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "rootfs.cpio"), make([]byte, 3<<20), 0o644)
	os.WriteFile(filepath.Join(d, "packages.txt"), []byte("fio 3.41-2\n"), 0o644)
	os.WriteFile(filepath.Join(d, "complete"), nil, 0o644)
	code, out, errs := runVM("image", "--cache", dir, "--packages")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "image " + filepath.Join(d, "rootfs.cpio") + "\nkey " + s.Key() + "\nsize 3 MB\nfio 3.41-2\n"
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
}
