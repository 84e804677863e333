package vm

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/initramfs"
)

// TestInitrdWithUserland: the userland archive comes first, byte for
// byte, and the per-boot archive after it adds no "bin" entry, which
// would make the kernel replace Debian's bin -> usr/bin link.
func TestInitrdWithUserland(t *testing.T) {
	dir := t.TempDir()
	var u bytes.Buffer
	w := initramfs.NewWriter(&u)
	w.Symlink("bin", "usr/bin")
	w.Bytes("usr/bin/sh", 0o755, []byte("#!"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.cpio")
	os.WriteFile(rootfs, u.Bytes(), 0o644)
	initBin := filepath.Join(dir, "init")
	os.WriteFile(initBin, []byte("init"), 0o755)
	for _, withUserland := range []bool{false, true} {
		m := &Machine{Kernel: debian.Kernel{Release: "7.3.4+deb13-amd64"}, Init: initBin}
		if withUserland {
			m.Userland = rootfs
		}
		var out bytes.Buffer
		if err := m.Initrd(&out); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		if withUserland {
			if !bytes.HasPrefix(b, u.Bytes()) {
				t.Fatal("the initrd does not start with the userland archive")
			}
			b = b[len(u.Bytes()):]
		}
		gz, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(gz)
		if err != nil {
			t.Fatal(err)
		}
		hasBin := bytes.Contains(plain, []byte("bin\x00")) && !bytes.Contains(plain, []byte("/bin\x00"))
		if hasBin == withUserland {
			t.Errorf("userland %v: per-boot archive has a \"bin\" entry: %v", withUserland, hasBin)
		}
	}
	m := &Machine{Init: initBin, Userland: filepath.Join(dir, "missing.cpio")}
	if err := m.Initrd(io.Discard); err == nil || !strings.Contains(err.Error(), "userland") {
		t.Errorf("missing userland: %v", err)
	}
}

// TestBuildTestsUserlandTimeout: packages that run with the userland get
// twice the per-package timeout.
func TestBuildTestsUserlandTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ListTestPackages(ctx, src, []string{"./internal/vm/vmtest"})
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("packages %v, %v", pkgs, err)
	}
	two := []Package{pkgs[0], pkgs[0]}
	two[1].Userland = true
	_, steps, err := BuildTests(ctx, src, t.TempDir(), two, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].TimeoutSec != 60 || steps[1].TimeoutSec != 120 {
		t.Errorf("timeouts %d and %d s, want 60 and 120", steps[0].TimeoutSec, steps[1].TimeoutSec)
	}
}
