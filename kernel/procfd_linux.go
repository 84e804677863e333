package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// VerifyProcFD checks that dir (normally /proc/self/fd) lists this
// process's open descriptors: that it is on procfs (statfs magic), and
// that a pipe made for the check shows up in it as this pipe (its inode
// number, which nobody can predict). A launcher that mounts a tmpfs over
// /proc, or binds another process's fd directory over ours, fails it, so
// a scan of dir cannot be fooled into missing a descriptor.
func VerifyProcFD(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return &Error{Op: "statfs " + dir, Errno: errnoOf(err), Advice: "is /proc mounted?"}
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%s is not on procfs (file-system type %#x, want %#x): cannot trust its list of open descriptors", dir, st.Type, unix.PROC_SUPER_MAGIC)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return &Error{Op: "pipe2", Errno: errnoOf(err)}
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var fst unix.Stat_t
	if err := unix.Fstat(p[0], &fst); err != nil {
		return &Error{Op: "fstat", Errno: errnoOf(err)}
	}
	want := fmt.Sprintf("pipe:[%d]", fst.Ino)
	got, err := os.Readlink(filepath.Join(dir, strconv.Itoa(p[0])))
	if err != nil || got != want {
		return fmt.Errorf("%s does not show this process's descriptors (descriptor %d reads %q, %v; want %q): cannot trust it", dir, p[0], got, err, want)
	}
	return nil
}
