//go:build !linux

package vm

import "syscall"

// qemuProcAttr is nil where there is no parent-death signal: QEMU is
// still killed when the boot's context ends.
func qemuProcAttr() *syscall.SysProcAttr { return nil }
