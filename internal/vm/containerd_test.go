package vm

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringfence/ringfence/internal/vminit"
)

// A cached build is reused as it is: no go command runs (the context is
// already cancelled, so a build would fail), and the guest gets both
// binaries under vminit.ContainerdDir/VERSION.
func TestBuildContainerdCached(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "containerd", "v9.9.9")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range containerdCommands() {
		if err := os.WriteFile(filepath.Join(dir, c), []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	files, err := BuildContainerd(ctx, cache, "v9.9.9", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		path.Join(vminit.ContainerdDir, "v9.9.9", "containerd"):              filepath.Join(dir, "containerd"),
		path.Join(vminit.ContainerdDir, "v9.9.9", "containerd-shim-runc-v2"): filepath.Join(dir, "containerd-shim-runc-v2"),
	}
	if len(files) != len(want) {
		t.Fatalf("files %+v; want %v", files, want)
	}
	for _, f := range files {
		if want[f.Path] != f.HostPath || f.Mode != 0o755 {
			t.Errorf("file %+v; want %s from %s, mode 0755", f, f.Path, want[f.Path])
		}
	}
	// A partial cache (one binary missing) is rebuilt, which here fails.
	os.Remove(filepath.Join(dir, "containerd-shim-runc-v2"))
	if _, err := BuildContainerd(ctx, cache, "v9.9.9", nil); err == nil {
		t.Errorf("BuildContainerd with the shim missing from the cache: no error; want a (cancelled) rebuild")
	}
}

// The packages that run the built containerd are in-VM test packages
// with the userland (its runc, ctr and Debian's containerd).
func TestContainerdPackagesUseTheUserland(t *testing.T) {
	for _, p := range ContainerdPackages() {
		if !slices.Contains(TestPackages(), p) || !slices.Contains(UserlandPackages(), p) {
			t.Errorf("%s is in ContainerdPackages but not in TestPackages and UserlandPackages", p)
		}
	}
}
