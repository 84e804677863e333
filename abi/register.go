package abi

import (
	"encoding/binary"
	"fmt"
)

// io_uring_register(2) opcodes ringfence uses.
const (
	RegisterProbe        = 8  // IORING_REGISTER_PROBE
	RegisterRestrictions = 11 // IORING_REGISTER_RESTRICTIONS (ring, or task with fd -1)
	RegisterEnableRings  = 12 // IORING_REGISTER_ENABLE_RINGS
	RegisterBPFFilter    = 37 // IORING_REGISTER_BPF_FILTER (ring, or task with fd -1)
)

// SetupRDisabled is IORING_SETUP_R_DISABLED: the ring starts disabled so
// restrictions can be registered before IORING_REGISTER_ENABLE_RINGS.
const SetupRDisabled = 1 << 6

// SQE flags (IOSQE_*), as the kernel holds them in the filter context.
const (
	IOSQEFixedFile      = 1 << 0
	IOSQEIODrain        = 1 << 1
	IOSQEIOLink         = 1 << 2
	IOSQEIOHardlink     = 1 << 3
	IOSQEAsync          = 1 << 4
	IOSQEBufferSelect   = 1 << 5
	IOSQECQESkipSuccess = 1 << 6
	IOSQEValidFlagsMask = 0x7f
	BPFCmdFilter        = 1 // IO_URING_BPF_CMD_FILTER
	FilterDenyRest      = 1 // IO_URING_BPF_FILTER_DENY_REST
	FilterSzStrict      = 2 // IO_URING_BPF_FILTER_SZ_STRICT
	FilterFlagsMask     = FilterDenyRest | FilterSzStrict
	MaxFilterLen        = 4096 // largest filter_len the kernel accepts
	FilterStructSize    = 64   // sizeof(struct io_uring_bpf_filter)
	BPFStructSize       = 72   // sizeof(struct io_uring_bpf)
	RestrictionSize     = 16   // sizeof(struct io_uring_restriction)
	TaskRestrictionSize = 16   // sizeof(struct io_uring_task_restriction) without its array
	SockFilterSize      = 8    // sizeof(struct sock_filter)
)

// Offsets inside struct io_uring_bpf_filter and struct io_uring_bpf.
const (
	OffFilterOpcode   = 0
	OffFilterFlags    = 4
	OffFilterLen      = 8
	OffFilterPDUSize  = 12
	OffFilterResv     = 13
	OffFilterPtr      = 16
	OffFilterResv2    = 24
	OffBPFCmdType     = 0
	OffBPFCmdFlags    = 2
	OffBPFResv        = 4
	OffBPFFilter      = 8
	OffRestrictionOp  = 0
	OffRestrictionVal = 2
	OffRestrictionRsv = 3
	OffRestrictionRs2 = 4
	OffTaskResFlags   = 0
	OffTaskResNr      = 2
	OffTaskResResv    = 4
)

// Filter is struct io_uring_bpf_filter without its program pointer: what
// one registration asks of the kernel.
type Filter struct {
	Opcode  uint32
	Flags   uint32
	Len     uint32 // number of sock_filter instructions
	PDUSize uint8
	Ptr     uint64 // user address of the sock_filter array
}

// EncodeBPF returns struct io_uring_bpf (cmd IO_URING_BPF_CMD_FILTER)
// wrapping f, in byte order bo.
func (f Filter) EncodeBPF(bo binary.ByteOrder) [BPFStructSize]byte {
	var b [BPFStructSize]byte
	bo.PutUint16(b[OffBPFCmdType:], BPFCmdFilter)
	fb := b[OffBPFFilter:]
	bo.PutUint32(fb[OffFilterOpcode:], f.Opcode)
	bo.PutUint32(fb[OffFilterFlags:], f.Flags)
	bo.PutUint32(fb[OffFilterLen:], f.Len)
	fb[OffFilterPDUSize] = f.PDUSize
	bo.PutUint64(fb[OffFilterPtr:], f.Ptr)
	return b
}

// DecodeBPF decodes struct io_uring_bpf. It fails if b has the wrong size,
// an unknown command, or any nonzero reserved field, as the kernel does.
func DecodeBPF(b []byte, bo binary.ByteOrder) (Filter, error) {
	var f Filter
	if len(b) != BPFStructSize {
		return f, fmt.Errorf("io_uring_bpf is %d bytes, got %d", BPFStructSize, len(b))
	}
	if c := bo.Uint16(b[OffBPFCmdType:]); c != BPFCmdFilter {
		return f, fmt.Errorf("io_uring_bpf: unknown cmd_type %d", c)
	}
	if bo.Uint16(b[OffBPFCmdFlags:]) != 0 || bo.Uint32(b[OffBPFResv:]) != 0 {
		return f, fmt.Errorf("io_uring_bpf: nonzero cmd_flags or resv")
	}
	fb := b[OffBPFFilter:]
	f.Opcode = bo.Uint32(fb[OffFilterOpcode:])
	f.Flags = bo.Uint32(fb[OffFilterFlags:])
	f.Len = bo.Uint32(fb[OffFilterLen:])
	f.PDUSize = fb[OffFilterPDUSize]
	f.Ptr = bo.Uint64(fb[OffFilterPtr:])
	for _, x := range fb[OffFilterResv:OffFilterPtr] {
		if x != 0 {
			return f, fmt.Errorf("io_uring_bpf_filter: nonzero resv")
		}
	}
	for _, x := range fb[OffFilterResv2:] {
		if x != 0 {
			return f, fmt.Errorf("io_uring_bpf_filter: nonzero resv2")
		}
	}
	return f, nil
}

// Restriction opcodes (enum io_uring_register_restriction_op).
const (
	RestrictRegisterOp       = 0
	RestrictSQEOp            = 1
	RestrictSQEFlagsAllowed  = 2
	RestrictSQEFlagsRequired = 3
)

// Restriction is struct io_uring_restriction. Value is the register
// opcode, SQE opcode or flag set, depending on Op.
type Restriction struct {
	Op    uint16
	Value uint8
}

// Encode returns the 16 bytes of r in byte order bo.
func (r Restriction) Encode(bo binary.ByteOrder) [RestrictionSize]byte {
	var b [RestrictionSize]byte
	bo.PutUint16(b[OffRestrictionOp:], r.Op)
	b[OffRestrictionVal] = r.Value
	return b
}

// EncodeTaskRestrictions returns struct io_uring_task_restriction followed
// by rs, as registered with io_uring_register(-1, 11, buf, 1).
func EncodeTaskRestrictions(flags uint16, rs []Restriction, bo binary.ByteOrder) []byte {
	b := make([]byte, TaskRestrictionSize+RestrictionSize*len(rs))
	bo.PutUint16(b[OffTaskResFlags:], flags)
	bo.PutUint16(b[OffTaskResNr:], uint16(len(rs)))
	for i, r := range rs {
		e := r.Encode(bo)
		copy(b[TaskRestrictionSize+i*RestrictionSize:], e[:])
	}
	return b
}
