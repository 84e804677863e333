package vm

import "syscall"

// qemuProcAttr makes QEMU die with the harness (the parent-death signal).
func qemuProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
