package kernel

import (
	"syscall"

	"github.com/ringfence/ringfence/abi"
)

// Setup flags (IORING_SETUP_*) ringfence uses. SetupRDisabled is
// abi.SetupRDisabled.
const (
	SetupSQPoll    = 1 << 1 // IORING_SETUP_SQPOLL: a kernel thread polls the submission queue
	SetupAttachWQ  = 1 << 5 // IORING_SETUP_ATTACH_WQ: share Params.WQFD's async backend (with SetupSQPoll: its poll thread)
	SetupRDisabled = abi.SetupRDisabled
)

// Params are the parameters of NewRing.
type Params struct {
	Entries      uint32 // submission queue size, rounded up to a power of two by the kernel; 0 means 8
	Flags        uint32 // IORING_SETUP_* flags, e.g. SetupSQPoll, SetupRDisabled
	SQThreadIdle uint32 // with SetupSQPoll: milliseconds the poll thread spins before sleeping
	WQFD         int    // with SetupAttachWQ: the io_uring descriptor whose backend the new ring shares
}

// SQE is struct io_uring_sqe, 64 bytes, as plain fields. OpFlags is the
// per-opcode flags word (rw_flags, open_flags, ...); Off doubles as addr2
// and FileIndex as splice_fd_in. Pointers into Go memory that the request
// needs (a path, a sockaddr, an open_how) are listed in Keep so the ring
// keeps them alive until the request completes.
type SQE struct {
	Opcode      abi.Opcode
	Flags       uint8 // IOSQE_*
	IOPrio      uint16
	FD          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   uint32
	Addr3       uint64
	Keep        []any
}

// CQE is struct io_uring_cqe: the request's user_data, its result (a
// negative errno on failure, e.g. -EACCES when a filter denied it) and
// flags.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
	// Skipped is set by Ring.Do for a request with
	// IOSQE_CQE_SKIP_SUCCESS that posted no completion: it succeeded.
	Skipped bool
}

// Err returns nil for a non-negative result and the errno otherwise.
func (c CQE) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// Probe is the answer of IORING_REGISTER_PROBE.
type Probe struct {
	LastOp    abi.Opcode   // the highest opcode the kernel knows
	Supported []abi.Opcode // the opcodes the kernel supports, ascending
}

// Has reports whether op is supported.
func (p Probe) Has(op abi.Opcode) bool {
	for _, o := range p.Supported {
		if o == op {
			return true
		}
	}
	return false
}
