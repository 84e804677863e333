package ringfence

import (
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// Host returns the Kernel of the running system, built on package kernel.
func Host() Kernel { return hostKernel{} }

type hostKernel struct{}

func (hostKernel) Supported() error              { return kernel.Supported() }
func (hostKernel) Version() (abi.Version, error) { return kernel.Version() }
func (hostKernel) SetNoNewPrivs() error          { return kernel.SetNoNewPrivs() }
func (hostKernel) RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	return kernel.RegisterTaskFilter(op, prog, flags, pdu)
}
func (hostKernel) RegisterRingFilter(fd int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	return kernel.RegisterRingFilter(fd, op, prog, flags, pdu)
}
func (hostKernel) RingFDs() ([]int, error)                     { return RingFDs() }
func (hostKernel) Close(fd int) error                          { return kernel.CloseFD(fd) }
func (hostKernel) Exec(path string, argv, envv []string) error { return kernel.Exec(path, argv, envv) }
