//go:build !linux

package ocitest

import "testing"

// makeSpecialFiles fails: FIFOs and device nodes are made with Linux
// system calls, and the container routes these cases test run only on
// Linux.
func makeSpecialFiles(t *testing.T, dir string) {
	t.Helper()
	t.Fatal("the policy-directory cases need Linux (mkfifo, mknod)")
}
