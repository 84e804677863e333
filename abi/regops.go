package abi

import (
	"strconv"
	"strings"
)

// RegisterOp is an io_uring_register(2) opcode (enum io_uring_register_op).
// The register call is not an io_uring request: no BPF filter sees it. Task
// restrictions (IORING_RESTRICTION_REGISTER_OP) allow or deny it.
type RegisterOp uint8

// RegisterOpLast is IORING_REGISTER_LAST on Linux 7.0 to 7.3: one past the
// highest register opcode. A restriction naming an opcode at or above it
// is refused with EINVAL.
const RegisterOpLast = 38

// RegisterUseRegisteredRing is IORING_REGISTER_USE_REGISTERED_RING, the
// flag or-ed into the opcode argument to name a registered ring index
// instead of a file descriptor. It is not part of the opcode.
const RegisterUseRegisteredRing = 1 << 31

// Register opcodes that ringfence treats specially.
const (
	RegOpProbe        RegisterOp = RegisterProbe
	RegOpRestrictions RegisterOp = RegisterRestrictions
	RegOpEnableRings  RegisterOp = RegisterEnableRings
	RegOpSyncCancel   RegisterOp = 24
	RegOpSendMsgRing  RegisterOp = 31
	RegOpQuery        RegisterOp = 35
	RegOpBPFFilter    RegisterOp = RegisterBPFFilter
)

// registerOpNames are the kernel's names without the "IORING_" prefix,
// indexed by opcode.
var registerOpNames = [RegisterOpLast]string{
	"REGISTER_BUFFERS", "UNREGISTER_BUFFERS", "REGISTER_FILES", "UNREGISTER_FILES",
	"REGISTER_EVENTFD", "UNREGISTER_EVENTFD", "REGISTER_FILES_UPDATE", "REGISTER_EVENTFD_ASYNC",
	"REGISTER_PROBE", "REGISTER_PERSONALITY", "UNREGISTER_PERSONALITY", "REGISTER_RESTRICTIONS",
	"REGISTER_ENABLE_RINGS", "REGISTER_FILES2", "REGISTER_FILES_UPDATE2", "REGISTER_BUFFERS2",
	"REGISTER_BUFFERS_UPDATE", "REGISTER_IOWQ_AFF", "UNREGISTER_IOWQ_AFF", "REGISTER_IOWQ_MAX_WORKERS",
	"REGISTER_RING_FDS", "UNREGISTER_RING_FDS", "REGISTER_PBUF_RING", "UNREGISTER_PBUF_RING",
	"REGISTER_SYNC_CANCEL", "REGISTER_FILE_ALLOC_RANGE", "REGISTER_PBUF_STATUS", "REGISTER_NAPI",
	"UNREGISTER_NAPI", "REGISTER_CLOCK", "REGISTER_CLONE_BUFFERS", "REGISTER_SEND_MSG_RING",
	"REGISTER_ZCRX_IFQ", "REGISTER_RESIZE_RINGS", "REGISTER_MEM_REGION", "REGISTER_QUERY",
	"REGISTER_ZCRX_CTRL", "REGISTER_BPF_FILTER",
}

// String returns the opcode's name without the "IORING_" prefix, e.g.
// "REGISTER_PROBE", or "REGISTER_OP(n)" for an unknown one.
func (o RegisterOp) String() string {
	if int(o) < RegisterOpLast {
		return registerOpNames[o]
	}
	return "REGISTER_OP(" + strconv.Itoa(int(o)) + ")"
}

// KernelName returns the kernel's name, e.g. "IORING_REGISTER_PROBE".
func (o RegisterOp) KernelName() string { return "IORING_" + o.String() }

// RegisterOpNames returns the names of every register opcode below
// RegisterOpLast, indexed by opcode, without the "IORING_" prefix.
func RegisterOpNames() []string { return registerOpNames[:] }

// LookupRegisterOp finds a register opcode by name, with or without the
// "IORING_" prefix, in any case.
func LookupRegisterOp(name string) (RegisterOp, bool) {
	n := strings.TrimPrefix(strings.ToUpper(name), "IORING_")
	for i, s := range registerOpNames {
		if s == n {
			return RegisterOp(i), true
		}
	}
	return 0, false
}
