// Package initramfs writes Linux initramfs archives: the "newc" cpio format
// (the only one the kernel unpacks), usually gzip-compressed.
//
// The writer is a few dozen lines of code on purpose: the format is a fixed
// 110-byte ASCII header per entry, the name, and the data, each padded to
// four bytes (Documentation/driver-api/early-userspace/buffer-format.rst).
// Output is deterministic: inode numbers count up from 1 and every
// timestamp is 0, so the same inputs give the same bytes.
package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// File-type bits of the cpio mode field (the same as struct stat's st_mode).
const (
	typeDir     = 0o040000
	typeRegular = 0o100000
	typeSymlink = 0o120000
	typeCharDev = 0o020000
	typeMask    = 0o170000
)

// trailer is the name of the entry that ends every cpio archive.
const trailer = "TRAILER!!!"

// Writer writes a newc cpio archive entry by entry. Call Close to write the
// trailer; Close does not close the underlying writer.
type Writer struct {
	w      io.Writer
	ino    uint32
	names  map[string]bool
	err    error
	closed bool
	// owner and nextIno hold an Add call's owners and inode number
	// for the entry being written; lastIno is the number it got.
	owner            [2]uint32
	nextIno, lastIno uint32
}

// NewWriter returns a Writer that writes an uncompressed archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, names: map[string]bool{}}
}

// Dir adds a directory with permission bits perm (e.g. 0o755). Parents of
// any entry that were not added are added as 0o755 directories first.
func (w *Writer) Dir(name string, perm fs.FileMode) error {
	return w.entry(name, typeDir|uint32(perm.Perm()), 2, 0, 0, 0, nil)
}

// File adds a regular file of size bytes read from r, with permission bits
// perm. It fails if r does not yield exactly size bytes.
func (w *Writer) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	if size < 0 || size > 0xffffffff {
		return w.fail(fmt.Errorf("initramfs: %s: size %d does not fit a newc header", name, size))
	}
	return w.entry(name, typeRegular|uint32(perm.Perm()), 1, uint32(size), 0, 0, r)
}

// Bytes adds a regular file holding data.
func (w *Writer) Bytes(name string, perm fs.FileMode, data []byte) error {
	return w.File(name, perm, int64(len(data)), strings.NewReader(string(data)))
}

// Symlink adds a symbolic link name pointing at target.
func (w *Writer) Symlink(name, target string) error {
	return w.entry(name, typeSymlink|0o777, 1, uint32(len(target)), 0, 0, strings.NewReader(target))
}

// CharDev adds a character device node, such as /dev/console (5, 1). No
// privilege is needed to write one: the kernel creates it when unpacking.
func (w *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return w.entry(name, typeCharDev|uint32(perm.Perm()), 1, 0, major, minor, nil)
}

// Entry is a complete newc record, for archives copied from another
// archive (a tar of a root file system): any file type, owners, and hard
// links.
type Entry struct {
	// Name is the path in the guest.
	Name string
	// Mode is struct stat's st_mode: the file type (S_IFREG, S_IFDIR,
	// S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK) and the permission,
	// setuid, setgid and sticky bits.
	Mode uint32
	// UID and GID own the file.
	UID, GID uint32
	// Nlink is the link count; 0 means 1. The kernel links every later
	// entry with the same Ino to the first one if Nlink is 2 or more.
	Nlink uint32
	// Ino is the inode number; 0 lets the writer number the entry. Give
	// a hard link the number Add returned for its target.
	Ino uint32
	// Size is the length of the data: a regular file's content, a
	// symbolic link's target; 0 for the other types and for hard links
	// after the first.
	Size int64
	// RMajor and RMinor are a device node's numbers.
	RMajor, RMinor uint32
}

// Add writes e with Size bytes read from r and returns the entry's inode
// number. Unlike Dir, File and the others it keeps e's owners.
func (w *Writer) Add(e Entry, r io.Reader) (uint32, error) {
	switch e.Mode & typeMask {
	case typeDir, typeRegular, typeSymlink, typeCharDev, 0o060000, 0o010000, 0o140000:
	default:
		return 0, w.fail(fmt.Errorf("initramfs: %s: unknown file type in mode %#o", e.Name, e.Mode))
	}
	if e.Size < 0 || e.Size > 0xffffffff {
		return 0, w.fail(fmt.Errorf("initramfs: %s: size %d does not fit a newc header", e.Name, e.Size))
	}
	nlink := e.Nlink
	if nlink == 0 {
		nlink = 1
	}
	w.owner, w.nextIno = [2]uint32{e.UID, e.GID}, e.Ino
	defer func() { w.owner, w.nextIno = [2]uint32{}, 0 }()
	err := w.entry(e.Name, e.Mode, nlink, uint32(e.Size), e.RMajor, e.RMinor, r)
	return w.lastIno, err
}

// Close writes the trailer that ends the archive. After any earlier
// error it writes nothing and returns that error.
func (w *Writer) Close() error {
	if w.closed || w.err != nil {
		w.closed = true
		return w.err
	}
	err := w.header(trailer, 0, 1, 0, 0, 0)
	w.closed = true
	return w.fail(err)
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// clean turns a path into the relative form the kernel expects ("bin/x").
func clean(name string) (string, error) {
	c := strings.TrimPrefix(path.Clean("/"+name), "/")
	if c == "" || c == trailer {
		return "", fmt.Errorf("initramfs: invalid entry name %q", name)
	}
	return c, nil
}

func (w *Writer) entry(name string, mode, nlink, size, rmajor, rminor uint32, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return w.fail(fmt.Errorf("initramfs: %s: archive already closed", name))
	}
	c, err := clean(name)
	if err != nil {
		return w.fail(err)
	}
	if w.names[c] {
		return w.fail(fmt.Errorf("initramfs: duplicate entry %q", c))
	}
	// The kernel does not create missing parents: add them first.
	for i := 0; i < len(c); i++ {
		if c[i] == '/' && !w.names[c[:i]] {
			w.names[c[:i]] = true
			owner, ino := w.owner, w.nextIno
			w.owner, w.nextIno = [2]uint32{}, 0
			err := w.header(c[:i], typeDir|0o755, 2, 0, 0, 0)
			w.owner, w.nextIno = owner, ino
			if err != nil {
				return w.fail(err)
			}
		}
	}
	w.names[c] = true
	if err := w.header(c, mode, nlink, size, rmajor, rminor); err != nil {
		return w.fail(err)
	}
	if size > 0 {
		n, err := io.Copy(w.w, io.LimitReader(r, int64(size)))
		if err != nil {
			return w.fail(fmt.Errorf("initramfs: %s: %w", c, err))
		}
		if n != int64(size) {
			return w.fail(fmt.Errorf("initramfs: %s: got %d bytes, header says %d", c, n, size))
		}
	}
	return w.fail(w.pad(int(size)))
}

// header writes one 110-byte newc header and the padded name.
func (w *Writer) header(name string, mode, nlink, size, rmajor, rminor uint32) error {
	var ino uint32
	switch {
	case name == trailer:
	case w.nextIno != 0:
		ino = w.nextIno
	default:
		w.ino++
		ino = w.ino
	}
	w.lastIno = ino
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with NUL), check.
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, w.owner[0], w.owner[1], nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := io.WriteString(w.w, h+name+"\x00"); err != nil {
		return err
	}
	return w.pad(len(h) + len(name) + 1)
}

func (w *Writer) pad(n int) error {
	if p := (4 - n%4) % 4; p > 0 {
		_, err := w.w.Write(make([]byte, p))
		return err
	}
	return nil
}

// GzipWriter is a Writer whose output is gzip-compressed, the form
// qemu -initrd and the kernel accept.
type GzipWriter struct {
	*Writer
	gz *gzip.Writer
}

// NewGzipWriter returns a Writer that compresses the archive into w.
func NewGzipWriter(w io.Writer) *GzipWriter {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // level is valid
	return &GzipWriter{Writer: NewWriter(gz), gz: gz}
}

// Close writes the trailer and flushes the gzip stream.
func (g *GzipWriter) Close() error {
	err := g.Writer.Close()
	if cerr := g.gz.Close(); err == nil {
		err = cerr
	}
	return err
}
