package ringfence

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/ringfence/ringfence/kernel"
)

// ringTarget is what readlink(2) shows for an io_uring descriptor in
// /proc/PID/fd.
const ringTarget = "anon_inode:[io_uring]"

// RingFDs returns the open file descriptors of the calling process that are
// io_uring instances, found by reading /proc/self/fd, in increasing order.
// It first checks that /proc/self/fd is procfs and shows this process's
// descriptors (kernel.VerifyProcFD), and fails otherwise: a fake /proc
// would hide rings.
func RingFDs() ([]int, error) {
	const dir = "/proc/self/fd"
	if err := kernel.VerifyProcFD(dir); err != nil {
		return nil, fmt.Errorf("list open descriptors: %w", err)
	}
	return ringFDsIn(dir)
}

// ringFDsIn lists the io_uring descriptors in a /proc/PID/fd directory.
// Descriptors that close while it reads (such as its own directory handle)
// are skipped.
func ringFDsIn(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list open descriptors: %w (is /proc mounted?)", err)
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			if os.IsNotExist(err) {
				continue // closed meanwhile
			}
			return nil, fmt.Errorf("inspect descriptor %d: %w", fd, err)
		}
		if target == ringTarget {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds, nil
}
