// Package userland builds the Debian userland that ringfence's test VMs
// can boot with: real programs that use io_uring (PostgreSQL 18, Node.js,
// fio, qemu-img and qemu-io), the OCI runtimes (runc, crun, Podman with
// conmon) and containerd, installed by mmdebstrap from Debian's archive.
//
// The image is an uncompressed newc cpio archive. The harness (package vm)
// puts it in front of each boot's small initramfs; the kernel unpacks both,
// in order, into its RAM-backed root file system, so the guest needs no
// block device, no file system module and no kernel-specific part: one
// image serves every kernel. The image is built once per recipe (suite,
// mirror, package list, hooks) and cached under the cache directory as
// userland/KEY/rootfs.cpio, like the kernels.
package userland

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vm/initramfs"
)

// Mirror is the Debian archive the userland comes from.
const Mirror = "https://deb.debian.org/debian"

// Suite is the Debian suite the userland comes from: sid is the one with
// PostgreSQL 18, Node.js 24, fio 3.41, runc 1.3, crun 1.28, Podman 5 and
// containerd 2.1.
const Suite = "sid"

// Spec is a userland recipe: what mmdebstrap installs.
type Spec struct {
	// Suite and Mirror name the Debian archive.
	Suite, Mirror string
	// Packages are installed on top of Debian's essential set, with
	// their dependencies but without recommends.
	Packages []string
}

// Default returns the recipe of ringfence's test userland.
func Default() Spec {
	return Spec{
		Suite:  Suite,
		Mirror: Mirror,
		Packages: []string{
			// Applications that use io_uring.
			"postgresql-18", "postgresql-client-18", // io_method=io_uring; pgbench
			"nodejs",     // libuv with UV_USE_IO_URING=1
			"fio",        // ioengine=io_uring
			"qemu-utils", // qemu-img, qemu-io with aio=io_uring
			// OCI runtimes and Podman.
			"runc", "crun", "podman", "conmon", "catatonit",
			// containerd (its CRI plugin and NRI) for the container
			// routes' end-to-end tests.
			"containerd",
			// Tools the tests use.
			"procps", "iproute2",
		},
	}
}

// Hooks and options that are part of every recipe.
var (
	// excludes keep documentation and translations out of the image.
	excludes = []string{
		"/usr/share/man/*", "/usr/share/doc/*", "/usr/share/info/*",
		"/usr/share/locale/*", "/usr/share/lintian/*",
		"/usr/libexec/podman/podman-testing",
	}
	// essentialHook runs before the packages are installed:
	// postgresql-common must not create a "main" cluster (tests make
	// their own, and an unused one costs 40 MB of guest RAM).
	essentialHook = `mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/ringfence.conf"`
	// customizeHook configures Podman for the guest: no systemd (cgroupfs,
	// file event log), and the vfs storage driver, because overlayfs is a
	// module in Debian's kernels and the guest loads none.
	customizeHook = `mkdir -p "$1/etc/containers/containers.conf.d" && printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$1/etc/containers/containers.conf.d/ringfence.conf" && printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' > "$1/etc/containers/storage.conf" && chroot "$1" dpkg-query -W -f '${Package} ${Version}\n' > "$1/` + ManifestPath[1:] + `"`
)

// ManifestPath is where the image lists its packages and their versions,
// one "name version" per line; the cache keeps a copy as packages.txt.
const ManifestPath = "/etc/ringfence-userland"

// mmdebstrapArgs returns mmdebstrap's arguments for s, writing the tar
// to out.
func (s Spec) mmdebstrapArgs(out string) []string {
	args := []string{
		"--variant=essential",
		"--format=tar",
		// Debian's archive signs sid's Release for a week; a stored
		// snapshot of the archive, or a machine whose clock is ahead,
		// sees it expired. The signature is still checked.
		`--aptopt=Acquire::Check-Valid-Until "false"`,
		"--include=" + strings.Join(s.Packages, ","),
	}
	for _, e := range excludes {
		args = append(args, "--dpkgopt=path-exclude="+e)
	}
	args = append(args,
		"--essential-hook="+essentialHook,
		"--customize-hook="+customizeHook,
		s.Suite, out, s.Mirror)
	return args
}

// Key identifies the recipe: a hash of everything that goes into the
// image, so a changed package list or hook builds a new one.
func (s Spec) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "ringfence userland 1\n")
	for _, a := range s.mmdebstrapArgs("OUT") {
		fmt.Fprintf(h, "%q\n", a)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Image is a built userland in the cache.
type Image struct {
	// Path is the uncompressed cpio archive (the rootfs).
	Path string
	// Key is the recipe's key.
	Key string
	// Size is the archive's size in bytes.
	Size int64
	// Packages is the manifest: "name version" lines.
	Packages string
	// Built is how long the build took; 0 if the image came from the cache.
	Built time.Duration
}

// dir is where s's image is cached.
func dir(cacheDir string, s Spec) string { return filepath.Join(cacheDir, "userland", s.Key()) }

// Cached returns s's image if it is in the cache.
func Cached(cacheDir string, s Spec) (Image, bool) {
	d := dir(cacheDir, s)
	st, err := os.Stat(filepath.Join(d, "rootfs.cpio"))
	if err != nil {
		return Image{}, false
	}
	if _, err := os.Stat(filepath.Join(d, "complete")); err != nil {
		return Image{}, false
	}
	man, _ := os.ReadFile(filepath.Join(d, "packages.txt"))
	return Image{Path: filepath.Join(d, "rootfs.cpio"), Key: s.Key(), Size: st.Size(), Packages: string(man)}, true
}

// Ensure returns s's image, building it with mmdebstrap first if it is
// not in the cache. Building needs mmdebstrap (apt-get install mmdebstrap)
// and either root or unprivileged user namespaces with subordinate ids;
// it downloads about 150 MB and takes about a minute on a fast link. log
// receives progress lines; nil discards them.
func Ensure(ctx context.Context, cacheDir string, s Spec, log io.Writer) (Image, error) {
	if img, ok := Cached(cacheDir, s); ok {
		return img, nil
	}
	if log == nil {
		log = io.Discard
	}
	if len(s.Packages) == 0 || s.Suite == "" || s.Mirror == "" {
		return Image{}, errors.New("userland: the recipe needs a suite, a mirror and packages")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return Image{}, errors.New("userland: mmdebstrap not found: install it (Debian: apt-get install mmdebstrap)")
	}
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(cacheDir, "tmp"), 0o755); err != nil {
		return Image{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(cacheDir, "tmp"), "userland-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, err
	}
	tarPath := filepath.Join(tmp, "rootfs.tar")
	fmt.Fprintf(log, "building the guest userland %s with mmdebstrap (%s: %s)\n", s.Key(), s.Suite, strings.Join(s.Packages, " "))
	cmd := exec.CommandContext(ctx, "mmdebstrap", s.mmdebstrapArgs(tarPath)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return Image{}, fmt.Errorf("userland: mmdebstrap: %v\n%s", err, tail(out.String(), 40))
	}
	cpioPath := filepath.Join(tmp, "rootfs.cpio")
	manifest, err := convert(tarPath, cpioPath)
	if err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "packages.txt"), manifest, 0o644); err != nil {
		return Image{}, err
	}
	if err := os.Remove(tarPath); err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return Image{}, err
	}
	d := dir(cacheDir, s)
	if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
		return Image{}, err
	}
	if err := os.Rename(tmp, d); err != nil {
		// Another process built the same recipe meanwhile.
		if img, ok := Cached(cacheDir, s); ok {
			return img, nil
		}
		return Image{}, err
	}
	img, ok := Cached(cacheDir, s)
	if !ok {
		return Image{}, fmt.Errorf("userland: %s vanished after the build", d)
	}
	img.Built = time.Since(start)
	fmt.Fprintf(log, "guest userland %s built in %.0fs: %d MB\n", img.Key, img.Built.Seconds(), img.Size>>20)
	return img, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// convert writes the tar archive at tarPath as a newc cpio archive at
// cpioPath, keeping types, modes, owners, device numbers and hard links,
// and returns the content of ManifestPath.
func convert(tarPath, cpioPath string) ([]byte, error) {
	// First pass: which files are targets of hard links. The kernel links
	// an entry to an earlier one only if both say nlink >= 2.
	linked, err := linkTargets(tarPath)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.Create(cpioPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	manifest, err := Convert(tar.NewReader(bufio.NewReaderSize(in, 1<<20)), bw, linked)
	if err != nil {
		return nil, fmt.Errorf("userland: %s: %w", tarPath, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return manifest, out.Close()
}

func linkTargets(tarPath string) (map[string]bool, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	linked := map[string]bool{}
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return linked, nil
		}
		if err != nil {
			return nil, fmt.Errorf("userland: %s: %w", tarPath, err)
		}
		if h.Typeflag == tar.TypeLink {
			linked[cleanName(h.Linkname)] = true
		}
	}
}

func cleanName(n string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(n, "."), "/"), "/")
}

// Convert copies a tar archive of a root file system into a newc cpio
// archive on w. linked names the regular files that hard links in the
// archive point at (without a leading "./" or "/"); they are written with
// a link count of 2 so that the kernel links the later names to them. It
// returns the content of the file at ManifestPath, if the archive has one.
func Convert(tr *tar.Reader, w io.Writer, linked map[string]bool) ([]byte, error) {
	cw := initramfs.NewWriter(w)
	inos := map[string]uint32{}
	var manifest []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := cleanName(h.Name)
		if name == "" {
			continue // the root directory itself
		}
		e := initramfs.Entry{
			Name: name,
			Mode: uint32(h.Mode & 0o7777),
			UID:  uint32(h.Uid),
			GID:  uint32(h.Gid),
		}
		var r io.Reader
		switch h.Typeflag {
		case tar.TypeReg:
			e.Mode |= 0o100000
			e.Size = h.Size
			r = tr
			if linked[name] {
				e.Nlink = 2
			}
			if "/"+name == ManifestPath {
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, err
				}
				manifest = b
				r = strings.NewReader(string(b))
			}
		case tar.TypeLink:
			target := cleanName(h.Linkname)
			ino, ok := inos[target]
			if !ok {
				return nil, fmt.Errorf("%s: hard link to %s, which is not earlier in the archive", name, target)
			}
			e.Mode |= 0o100000
			e.Nlink, e.Ino = 2, ino
		case tar.TypeSymlink:
			e.Mode |= 0o120000
			e.Size = int64(len(h.Linkname))
			r = strings.NewReader(h.Linkname)
		case tar.TypeDir:
			e.Mode |= 0o040000
			e.Nlink = 2
		case tar.TypeChar:
			e.Mode |= 0o020000
			e.RMajor, e.RMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeBlock:
			e.Mode |= 0o060000
			e.RMajor, e.RMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.Mode |= 0o010000
		default:
			return nil, fmt.Errorf("%s: tar entry type %q not supported", name, h.Typeflag)
		}
		ino, err := cw.Add(e, r)
		if err != nil {
			return nil, err
		}
		if e.Nlink == 2 && h.Typeflag == tar.TypeReg {
			inos[name] = ino
		}
	}
	return manifest, cw.Close()
}
