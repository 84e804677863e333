//go:build !linux

package kernel

import (
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// On systems other than Linux there is no io_uring: every call fails with
// ErrNeedsLinux, so that the pure parts of ringfence (policies, the
// compiler, the assembler and the emulator) build and work everywhere.

// Ring is an io_uring instance; without Linux there is none.
type Ring struct{}

// NewRing fails with ErrNeedsLinux.
func NewRing(Params) (*Ring, error) { return nil, ErrNeedsLinux }

// FD returns -1.
func (*Ring) FD() int { return -1 }

// Entries returns 0.
func (*Ring) Entries() int { return 0 }

// Close does nothing.
func (*Ring) Close() error { return nil }

// Submit fails with ErrNeedsLinux.
func (*Ring) Submit([]SQE, int) (int, error) { return 0, ErrNeedsLinux }

// Reap returns nothing.
func (*Ring) Reap() []CQE { return nil }

// Wait fails with ErrNeedsLinux.
func (*Ring) Wait(int) ([]CQE, error) { return nil, ErrNeedsLinux }

// Do fails with ErrNeedsLinux.
func (*Ring) Do(SQE) (CQE, error) { return CQE{}, ErrNeedsLinux }

// RegisterRestrictions fails with ErrNeedsLinux.
func (*Ring) RegisterRestrictions([]abi.Restriction) error { return ErrNeedsLinux }

// Enable fails with ErrNeedsLinux.
func (*Ring) Enable() error { return ErrNeedsLinux }

// RegisterFilter fails with ErrNeedsLinux.
func (*Ring) RegisterFilter(abi.Opcode, []cbpf.Instruction, uint32, uint8) error {
	return ErrNeedsLinux
}

// ProbeOpcodes fails with ErrNeedsLinux.
func (*Ring) ProbeOpcodes() (Probe, error) { return Probe{}, ErrNeedsLinux }

// Exec fails with ErrNeedsLinux: ringfence runs programs only on Linux.
func Exec(string, []string, []string) error { return ErrNeedsLinux }

// CloseFD fails with ErrNeedsLinux.
func CloseFD(int) error { return ErrNeedsLinux }

// SetInheritable fails with ErrNeedsLinux.
func SetInheritable(int) error { return ErrNeedsLinux }

// RegisterTaskFilter fails with ErrNeedsLinux.
func RegisterTaskFilter(abi.Opcode, []cbpf.Instruction, uint32, uint8) error { return ErrNeedsLinux }

// RegisterRingFilter fails with ErrNeedsLinux.
func RegisterRingFilter(int, abi.Opcode, []cbpf.Instruction, uint32, uint8) error {
	return ErrNeedsLinux
}

// ProbePDUSize fails with ErrNeedsLinux.
func ProbePDUSize(abi.Opcode) (uint8, error) { return 0, ErrNeedsLinux }

// PDUSizes fails with ErrNeedsLinux.
func PDUSizes() ([abi.OpLast]uint8, error) { return [abi.OpLast]uint8{}, ErrNeedsLinux }

// Supported returns ErrNeedsLinux.
func Supported() error { return ErrNeedsLinux }

// Release fails with ErrNeedsLinux.
func Release() (string, error) { return "", ErrNeedsLinux }

// Version fails with ErrNeedsLinux.
func Version() (abi.Version, error) { return abi.Version{}, ErrNeedsLinux }

// RegisterTaskRestrictions fails with ErrNeedsLinux.
func RegisterTaskRestrictions([]abi.Restriction) error { return ErrNeedsLinux }

// TaskRestricted fails with ErrNeedsLinux.
func TaskRestricted() (bool, error) { return false, ErrNeedsLinux }

// ProbeOpcodes fails with ErrNeedsLinux.
func ProbeOpcodes() (Probe, error) { return Probe{}, ErrNeedsLinux }

// SetNoNewPrivs fails with ErrNeedsLinux.
func SetNoNewPrivs() error { return ErrNeedsLinux }

// NoNewPrivs fails with ErrNeedsLinux.
func NoNewPrivs() (bool, error) { return false, ErrNeedsLinux }

// VerifyProcFD fails with ErrNeedsLinux.
func VerifyProcFD(string) error { return ErrNeedsLinux }

// InstallSeccomp fails with ErrNeedsLinux.
func InstallSeccomp([]cbpf.Instruction) error { return ErrNeedsLinux }
