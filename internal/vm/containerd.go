package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vminit"
)

// ContainerdVersions returns the containerds the harness builds from
// source for the guest, next to the userland's own (Debian's 2.1): module
// versions of github.com/containerd/containerd/v2, fetched through the Go
// module proxy. 2.2 passes NRI plugins a container's seccomp profile type,
// 2.3 its seccomp policy too.
func ContainerdVersions() []string { return []string{"v2.2.9", "v2.3.7"} }

// ContainerdPackages returns the package patterns among TestPackages whose
// tests run the containerds of ContainerdVersions: a matrix run that
// includes one of them builds them (once, cached) and puts them into every
// guest, each under vminit.ContainerdDir/VERSION.
func ContainerdPackages() []string { return []string{"./internal/containerdtest"} }

// containerdCommands returns the commands built: the daemon and the runc
// shim (which the test puts first on the daemon's PATH). Debian's ctr
// talks to the daemon.
func containerdCommands() []string { return []string{"containerd", "containerd-shim-runc-v2"} }

// containerdTags leave out the snapshotters that need cgo or tools the
// guest lacks.
const containerdTags = "no_btrfs no_devmapper no_zfs"

// BuildContainerd returns the containerd binaries of version (a module
// version of github.com/containerd/containerd/v2) as guest files under
// vminit.ContainerdDir/VERSION. It builds them statically (CGO_ENABLED=0) in a
// throwaway module that requires containerd, so no containerd code enters
// this repository, and keeps them in cacheDir/containerd/VERSION: later
// runs reuse them without the go command. On an empty cache the build
// downloads containerd's modules through the Go module proxy and takes
// minutes.
func BuildContainerd(ctx context.Context, cacheDir, version string, log io.Writer) ([]File, error) {
	if log == nil {
		log = io.Discard
	}
	dir := filepath.Join(cacheDir, "containerd", version)
	if !haveAll(dir) {
		if err := buildContainerd(ctx, cacheDir, dir, version, log); err != nil {
			return nil, err
		}
	}
	var files []File
	for _, c := range containerdCommands() {
		files = append(files, File{Path: path.Join(vminit.ContainerdDir, version, c), HostPath: filepath.Join(dir, c), Mode: 0o755})
	}
	return files, nil
}

func haveAll(dir string) bool {
	for _, c := range containerdCommands() {
		if st, err := os.Stat(filepath.Join(dir, c)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

func buildContainerd(ctx context.Context, cacheDir, dir, version string, log io.Writer) error {
	start := time.Now()
	fmt.Fprintf(log, "building containerd %s from the Go module proxy (minutes on an empty cache)\n", version)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	mod, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(mod)
	const module = "github.com/containerd/containerd/v2"
	var imports strings.Builder
	for _, c := range containerdCommands() {
		fmt.Fprintf(&imports, "\t_ %q\n", module+"/cmd/"+c)
	}
	// The blank imports let go mod tidy record every module the commands
	// need; containerd's go.mod fixes their versions.
	for name, data := range map[string]string{
		"go.mod":   fmt.Sprintf("module ringfence.invalid/containerd\n\ngo 1.26\n\nrequire %s %s\n", module, version),
		"tools.go": "//go:build tools\n\npackage tools\n\nimport (\n" + imports.String() + ")\n",
	} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	out := filepath.Join(mod, "bin")
	if err := goBuild(ctx, mod, "mod", "tidy"); err != nil {
		return fmt.Errorf("containerd %s: %w", version, err)
	}
	args := []string{"build", "-trimpath", "-tags", containerdTags,
		"-ldflags", "-s -w -X " + module + "/version.Version=" + version, "-o", out + "/"}
	for _, c := range containerdCommands() {
		args = append(args, module+"/cmd/"+c)
	}
	if err := goBuild(ctx, mod, args...); err != nil {
		return fmt.Errorf("containerd %s: %w", version, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(out, dir); err != nil && !haveAll(dir) {
		// Another run may have put its build there first: use that.
		return err
	}
	fmt.Fprintf(log, "built containerd %s in %.0fs\n", version, time.Since(start).Seconds())
	return nil
}
