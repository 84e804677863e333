package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// entry is one parsed newc record.
type entry struct {
	name                  string
	ino, mode, nlink      uint32
	rmajor, rminor, check uint32
	data                  []byte
}

// parse reads a newc archive the way the kernel's unpacker does (header,
// name padded to 4, data padded to 4, until TRAILER!!!), checking every
// rule on the way. It is written from the format description, not from
// the writer.
func parse(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	for {
		if off+110 > len(b) {
			t.Fatalf("offset %d: truncated header", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("offset %d: magic %q", off, h[:6])
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("offset %d: field %d: %v", off, i, err)
			}
			f[i] = uint32(v)
		}
		namesize := int(f[11])
		nameEnd := off + 110 + namesize
		if b[nameEnd-1] != 0 {
			t.Fatalf("offset %d: name not NUL-terminated", off)
		}
		name := string(b[off+110 : nameEnd-1])
		dataStart := (nameEnd + 3) &^ 3
		for _, p := range b[nameEnd:dataStart] {
			if p != 0 {
				t.Fatalf("%s: nonzero name padding", name)
			}
		}
		size := int(f[6])
		dataEnd := dataStart + size
		if f[5] != 0 || f[2] != 0 || f[3] != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", name, f[5], f[2], f[3])
		}
		if name == "TRAILER!!!" {
			if dataEnd != len(b) && (len(b)-dataEnd) >= 4 {
				t.Errorf("%d bytes after the trailer", len(b)-dataEnd)
			}
			return out
		}
		out = append(out, entry{name: name, ino: f[0], mode: f[1], nlink: f[4], rmajor: f[9], rminor: f[10], check: f[12], data: b[dataStart:dataEnd]})
		off = (dataEnd + 3) &^ 3
		if off%4 != 0 {
			t.Fatalf("%s: next header not aligned", name)
		}
	}
}

func TestWriterLayout(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	steps := []error{
		w.Dir("dev", 0o755),
		w.CharDev("/dev/console", 0o600, 5, 1),
		w.Bytes("/init", 0o755, []byte("#!/bin/sh\n")),
		w.Bytes("a/b/c.txt", 0o644, []byte("12345")), // parents a, a/b added
		w.Symlink("bin/sh", "/init"),
		w.Bytes("empty", 0o600, nil),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := parse(t, buf.Bytes())
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"dev", 0o040755, ""},
		{"dev/console", 0o020600, ""},
		{"init", 0o100755, "#!/bin/sh\n"},
		{"a", 0o040755, ""},
		{"a/b", 0o040755, ""},
		{"a/b/c.txt", 0o100644, "12345"},
		{"bin", 0o040755, ""},
		{"bin/sh", 0o120777, "/init"},
		{"empty", 0o100600, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	seen := map[uint32]bool{}
	for i, w := range want {
		g := got[i]
		if g.name != w.name || g.mode != w.mode || string(g.data) != w.data {
			t.Errorf("entry %d = %q mode %o data %q; want %q mode %o data %q", i, g.name, g.mode, g.data, w.name, w.mode, w.data)
		}
		if seen[g.ino] || g.ino == 0 {
			t.Errorf("%s: inode %d reused or zero", g.name, g.ino)
		}
		seen[g.ino] = true
	}
	if c := got[1]; c.rmajor != 5 || c.rminor != 1 {
		t.Errorf("dev/console is (%d, %d), want (5, 1)", c.rmajor, c.rminor)
	}
}

func TestWriterErrors(t *testing.T) {
	cases := []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"duplicate", func(w *Writer) error {
			w.Bytes("x", 0o644, nil)
			return w.Bytes("/x", 0o644, nil)
		}, `duplicate entry "x"`},
		{"short reader", func(w *Writer) error {
			return w.File("f", 0o644, 10, strings.NewReader("abc"))
		}, "got 3 bytes, header says 10"},
		{"empty name", func(w *Writer) error { return w.Dir("/", 0o755) }, "invalid entry name"},
		{"trailer name", func(w *Writer) error { return w.Bytes("TRAILER!!!", 0o644, nil) }, "invalid entry name"},
		{"after close", func(w *Writer) error {
			w.Close()
			return w.Dir("d", 0o755)
		}, "already closed"},
		{"too big", func(w *Writer) error { return w.File("f", 0o644, 1<<32, nil) }, "does not fit"},
		{"sticky", func(w *Writer) error {
			w.Bytes("x", 0o644, nil)
			w.Bytes("x", 0o644, nil)
			return w.Close()
		}, "duplicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(NewWriter(io.Discard))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestGzipDeterministic(t *testing.T) {
	build := func() []byte {
		var buf bytes.Buffer
		g := NewGzipWriter(&buf)
		for i := 0; i < 5; i++ {
			if err := g.Bytes(fmt.Sprintf("d/f%d", i), 0o644, bytes.Repeat([]byte{byte(i)}, 1000*i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := build(), build()
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same files differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	es := parse(t, raw)
	if len(es) != 6 || es[0].name != "d" || len(es[5].data) != 4000 {
		t.Errorf("unexpected entries: %d", len(es))
	}
}

// TestGNUCpioReads has GNU cpio, an independent implementation, unpack
// an archive. CI installs cpio; elsewhere the test skips without it.
func TestGNUCpioReads(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cpio not installed (.ci/run installs it)")
		}
		t.Skip("GNU cpio not installed; the independent reader check does not run")
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Bytes("top/file.txt", 0o640, []byte("hello, kernel\n"))
	w.Symlink("top/link", "file.txt")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "top", "file.txt"))
	if err != nil || string(b) != "hello, kernel\n" {
		t.Errorf("file.txt = %q, %v", b, err)
	}
	st, err := os.Stat(filepath.Join(dir, "top", "file.txt"))
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("file.txt mode = %v, %v; want 0640", st.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "top", "link")); err != nil || l != "file.txt" {
		t.Errorf("link = %q, %v", l, err)
	}
}
