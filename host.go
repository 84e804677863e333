package ringfence

import (
	"runtime"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// Host returns the Kernel of the running system, built on package kernel.
func Host() Kernel { return hostKernel{} }

type hostKernel struct{}

// Supported probes on a throwaway thread: the probe creates a ring, and
// Linux 7.0 drops a thread's task filters at execve when that thread has
// used io_uring (seen on 7.0.13), so the thread that registers and execs
// must not be the one that probed. The goroutine locks its thread and
// exits without unlocking it, so the Go runtime discards the thread.
func (hostKernel) Supported() error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ch <- kernel.Supported()
	}()
	return <-ch
}

func (hostKernel) Version() (abi.Version, error) { return kernel.Version() }
func (hostKernel) ExecKeepsFilters() error       { return ExecKeepsFilters() }
func (hostKernel) RegisterTaskRestrictions(rs []abi.Restriction) error {
	return kernel.RegisterTaskRestrictions(rs)
}
func (hostKernel) InstallSeccomp(prog []cbpf.Instruction) error { return kernel.InstallSeccomp(prog) }
func (hostKernel) SetNoNewPrivs() error                         { return kernel.SetNoNewPrivs() }
func (hostKernel) RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	return kernel.RegisterTaskFilter(op, prog, flags, pdu)
}
func (hostKernel) RegisterRingFilter(fd int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	return kernel.RegisterRingFilter(fd, op, prog, flags, pdu)
}
func (hostKernel) RingFDs() ([]int, error)                     { return RingFDs() }
func (hostKernel) Close(fd int) error                          { return kernel.CloseFD(fd) }
func (hostKernel) Exec(path string, argv, envv []string) error { return kernel.Exec(path, argv, envv) }
func (hostKernel) VerifyFiltered() error                       { return VerifyFiltered() }
