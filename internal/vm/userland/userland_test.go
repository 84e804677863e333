package userland

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// record is one newc entry, parsed independently of the writer.
type record struct {
	name                       string
	ino, mode, uid, gid, nlink uint64
	size, rmajor, rminor       uint64
	data                       string
}

func parseNewc(t *testing.T, b []byte) []record {
	t.Helper()
	var out []record
	off := 0
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("offset %d: no newc header", off)
		}
		var f [13]uint64
		for i := range f {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("offset %d field %d: %v", off, i, err)
			}
			f[i] = v
		}
		nameEnd := off + 110 + int(f[11])
		name := string(b[off+110 : nameEnd-1])
		data := (nameEnd + 3) &^ 3
		end := data + int(f[6])
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, record{name: name, ino: f[0], mode: f[1], uid: f[2], gid: f[3], nlink: f[4],
			size: f[6], rmajor: f[9], rminor: f[10], data: string(b[data:end])})
		off = (end + 3) &^ 3
	}
}

// rootTar is a small root file system with every type the converter
// handles: the root entry, directories, a setuid file owned by another
// user, a hard link to it, a symbolic link, device nodes, a FIFO and the
// manifest.
func rootTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "su program")
	add(&tar.Header{Name: "./usr/bin/perl5", Typeflag: tar.TypeReg, Mode: 0o755}, "perl")
	add(&tar.Header{Name: "./usr/bin/perl", Typeflag: tar.TypeLink, Linkname: "./usr/bin/perl5"}, "")
	add(&tar.Header{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, "")
	add(&tar.Header{Name: "./var/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/postgresql/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 101, Gid: 104}, "")
	add(&tar.Header{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	add(&tar.Header{Name: "./dev/loop0", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 0, Gid: 6}, "")
	add(&tar.Header{Name: "./dev/initctl", Typeflag: tar.TypeFifo, Mode: 0o600}, "")
	add(&tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "." + ManifestPath, Typeflag: tar.TypeReg, Mode: 0o644}, "fio 3.41-2\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConvert(t *testing.T) {
	var out bytes.Buffer
	man, err := Convert(tar.NewReader(bytes.NewReader(rootTar(t))), &out, map[string]bool{"usr/bin/perl5": true})
	if err != nil {
		t.Fatal(err)
	}
	if string(man) != "fio 3.41-2\n" {
		t.Errorf("manifest %q", man)
	}
	recs := parseNewc(t, out.Bytes())
	by := map[string]record{}
	var names []string
	for _, r := range recs {
		by[r.name] = r
		names = append(names, r.name)
	}
	wantOrder := "usr usr/bin usr/bin/su usr/bin/perl5 usr/bin/perl bin var var/lib var/lib/postgresql dev dev/null dev/loop0 dev/initctl etc etc/ringfence-userland"
	if got := strings.Join(names, " "); got != wantOrder {
		t.Fatalf("entries\n got %s\nwant %s", got, wantOrder)
	}
	tests := []struct {
		name              string
		mode, uid, gid    uint64
		nlink, rmaj, rmin uint64
		data              string
	}{
		{"usr/bin/su", 0o104755, 0, 0, 1, 0, 0, "su program"},
		{"usr/bin/perl5", 0o100755, 0, 0, 2, 0, 0, "perl"},
		{"usr/bin/perl", 0o100000, 0, 0, 2, 0, 0, ""},
		{"bin", 0o120000, 0, 0, 1, 0, 0, "usr/bin"},
		{"var/lib/postgresql", 0o040700, 101, 104, 2, 0, 0, ""},
		{"dev/null", 0o020666, 0, 0, 1, 1, 3, ""},
		{"dev/loop0", 0o060660, 0, 6, 1, 7, 0, ""},
		{"dev/initctl", 0o010600, 0, 0, 1, 0, 0, ""},
	}
	for _, tt := range tests {
		r := by[tt.name]
		if r.mode != tt.mode || r.uid != tt.uid || r.gid != tt.gid || r.nlink != tt.nlink || r.rmajor != tt.rmaj || r.rminor != tt.rmin || r.data != tt.data {
			t.Errorf("%s: mode %#o uid %d gid %d nlink %d dev %d:%d data %q; want %#o %d %d %d %d:%d %q",
				tt.name, r.mode, r.uid, r.gid, r.nlink, r.rmajor, r.rminor, r.data,
				tt.mode, tt.uid, tt.gid, tt.nlink, tt.rmaj, tt.rmin, tt.data)
		}
	}
	if by["usr/bin/perl"].ino != by["usr/bin/perl5"].ino {
		t.Errorf("hard link has inode %d, its target %d", by["usr/bin/perl"].ino, by["usr/bin/perl5"].ino)
	}
	inos := map[uint64]string{}
	for _, r := range recs {
		if prev, dup := inos[r.ino]; dup && !(r.name == "usr/bin/perl" && prev == "usr/bin/perl5") {
			t.Errorf("%s and %s share inode %d", prev, r.name, r.ino)
		}
		inos[r.ino] = r.name
	}
}

func TestConvertErrors(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./a", Typeflag: tar.TypeLink, Linkname: "./missing"})
	tw.Close()
	_, err := Convert(tar.NewReader(&buf), &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "a: hard link to missing") {
		t.Errorf("hard link to a missing file: err %v", err)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./x", Typeflag: tar.TypeXGlobalHeader})
	tw.WriteHeader(&tar.Header{Name: "./y", Typeflag: 'V'})
	tw.Close()
	if _, err := Convert(tar.NewReader(&buf), &bytes.Buffer{}, nil); err == nil {
		t.Error("unknown tar type accepted")
	}
}

// TestConvertFile runs the two passes on a tar file and lets GNU cpio,
// an independent reader, unpack the result: the hard link must be one
// inode, the setuid bit kept.
func TestConvertFile(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cpio not found (.ci/run installs it)")
		}
		t.Skip("cpio not found")
	}
	dir := t.TempDir()
	tarPath, cpioPath := filepath.Join(dir, "r.tar"), filepath.Join(dir, "r.cpio")
	if err := os.WriteFile(tarPath, rootTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	man, err := convert(tarPath, cpioPath)
	if err != nil || string(man) != "fio 3.41-2\n" {
		t.Fatalf("convert: %q, %v", man, err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	f, err := os.Open(cpioPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Device nodes need root to create; list them only.
	cmd := exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames", "usr/*", "bin", "etc/*")
	cmd.Dir, cmd.Stdin = out, f
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, b)
	}
	var a, b syscall.Stat_t
	if err := syscall.Stat(filepath.Join(out, "usr/bin/perl"), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(out, "usr/bin/perl5"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("perl and perl5: inodes %d, %d, nlink %d; want one inode, two links", a.Ino, b.Ino, a.Nlink)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "usr/bin/perl")); string(data) != "perl" {
		t.Errorf("perl holds %q", data)
	}
	if st, err := os.Stat(filepath.Join(out, "usr/bin/su")); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("su: %v, %v; want setuid", st.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(out, "bin")); err != nil || l != "usr/bin" {
		t.Errorf("bin -> %q, %v", l, err)
	}
}

func TestKey(t *testing.T) {
	d := Default()
	if len(d.Key()) != 16 || d.Key() != Default().Key() {
		t.Fatalf("key %q not stable", d.Key())
	}
	more := Default()
	more.Packages = append(more.Packages, "strace")
	other := Default()
	other.Suite = "trixie"
	if more.Key() == d.Key() || other.Key() == d.Key() {
		t.Error("the key does not change with the recipe")
	}
	for _, p := range []string{"postgresql-18", "nodejs", "fio", "qemu-utils", "runc", "crun", "podman", "conmon", "containerd"} {
		if !strings.Contains(","+strings.Join(d.Packages, ",")+",", ","+p+",") {
			t.Errorf("default recipe lacks %s", p)
		}
	}
}

func TestCachedAndEnsureErrors(t *testing.T) {
	dir := t.TempDir()
	s := Default()
	if _, ok := Cached(dir, s); ok {
		t.Fatal("empty cache has an image")
	}
	// A directory without the completion mark is a build that died.
	d := filepath.Join(dir, "userland", s.Key())
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "rootfs.cpio"), []byte("x"), 0o644)
	if _, ok := Cached(dir, s); ok {
		t.Fatal("an image without its completion mark counts as cached")
	}
	os.WriteFile(filepath.Join(d, "complete"), nil, 0o644)
	os.WriteFile(filepath.Join(d, "packages.txt"), []byte("fio 3.41-2\n"), 0o644)
	img, ok := Cached(dir, s)
	if !ok || img.Size != 1 || img.Packages != "fio 3.41-2\n" || img.Key != s.Key() {
		t.Fatalf("cached image %+v, %v", img, ok)
	}
	// Ensure uses the cache without mmdebstrap.
	if got, err := Ensure(t.Context(), dir, s, nil); err != nil || got.Path != img.Path || got.Built != 0 {
		t.Fatalf("Ensure: %+v, %v", got, err)
	}
	if _, err := Ensure(t.Context(), t.TempDir(), Spec{}, nil); err == nil || !strings.Contains(err.Error(), "needs a suite") {
		t.Errorf("empty recipe: %v", err)
	}
}

// FuzzConvert: any tar stream either converts or fails with an error,
// and what converts is a newc archive that parses.
func FuzzConvert(f *testing.F) {
	f.Add(rootTarBytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		if _, err := Convert(tar.NewReader(bytes.NewReader(b)), &out, nil); err != nil {
			return
		}
		parseNewc(t, out.Bytes())
	})
}

func rootTarBytes() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./etc/a", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("a"))
	tw.WriteHeader(&tar.Header{Name: "./etc/b", Typeflag: tar.TypeLink, Linkname: "./etc/a"})
	tw.Close()
	return buf.Bytes()
}
