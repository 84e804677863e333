package ocitest

import (
	"path/filepath"
	"syscall"
	"testing"
)

// makeSpecialFiles makes the files a policy directory must refuse to
// read because they are not regular: a FIFO (fifo.yaml), which would
// block a reader, and a device node (null.yaml) with /dev/null's
// numbers (1, 3). Making the device needs root.
func makeSpecialFiles(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(dir, "null.yaml"), syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
		t.Fatalf("mknod (the test needs root): %v", err)
	}
}
