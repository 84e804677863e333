package abi

import (
	"fmt"
	"strconv"
	"strings"
)

// Opcode is an io_uring SQE opcode (enum io_uring_op).
type Opcode uint8

// OpLast is IORING_OP_LAST on Linux 7.0 to 7.3: one past the highest opcode.
// Registering a filter for an opcode >= OpLast fails with EINVAL.
const OpLast = 65

// The io_uring opcodes, named after the kernel's IORING_OP_* constants.
const (
	OpNop            Opcode = 0
	OpReadv          Opcode = 1
	OpWritev         Opcode = 2
	OpFsync          Opcode = 3
	OpReadFixed      Opcode = 4
	OpWriteFixed     Opcode = 5
	OpPollAdd        Opcode = 6
	OpPollRemove     Opcode = 7
	OpSyncFileRange  Opcode = 8
	OpSendmsg        Opcode = 9
	OpRecvmsg        Opcode = 10
	OpTimeout        Opcode = 11
	OpTimeoutRemove  Opcode = 12
	OpAccept         Opcode = 13
	OpAsyncCancel    Opcode = 14
	OpLinkTimeout    Opcode = 15
	OpConnect        Opcode = 16
	OpFallocate      Opcode = 17
	OpOpenat         Opcode = 18
	OpClose          Opcode = 19
	OpFilesUpdate    Opcode = 20
	OpStatx          Opcode = 21
	OpRead           Opcode = 22
	OpWrite          Opcode = 23
	OpFadvise        Opcode = 24
	OpMadvise        Opcode = 25
	OpSend           Opcode = 26
	OpRecv           Opcode = 27
	OpOpenat2        Opcode = 28
	OpEpollCtl       Opcode = 29
	OpSplice         Opcode = 30
	OpProvideBuffers Opcode = 31
	OpRemoveBuffers  Opcode = 32
	OpTee            Opcode = 33
	OpShutdown       Opcode = 34
	OpRenameat       Opcode = 35
	OpUnlinkat       Opcode = 36
	OpMkdirat        Opcode = 37
	OpSymlinkat      Opcode = 38
	OpLinkat         Opcode = 39
	OpMsgRing        Opcode = 40
	OpFsetxattr      Opcode = 41
	OpSetxattr       Opcode = 42
	OpFgetxattr      Opcode = 43
	OpGetxattr       Opcode = 44
	OpSocket         Opcode = 45
	OpUringCmd       Opcode = 46
	OpSendZc         Opcode = 47
	OpSendmsgZc      Opcode = 48
	OpReadMultishot  Opcode = 49
	OpWaitid         Opcode = 50
	OpFutexWait      Opcode = 51
	OpFutexWake      Opcode = 52
	OpFutexWaitv     Opcode = 53
	OpFixedFdInstall Opcode = 54
	OpFtruncate      Opcode = 55
	OpBind           Opcode = 56
	OpListen         Opcode = 57
	OpRecvZc         Opcode = 58
	OpEpollWait      Opcode = 59
	OpReadvFixed     Opcode = 60
	OpWritevFixed    Opcode = 61
	OpPipe           Opcode = 62
	OpNop128         Opcode = 63
	OpUringCmd128    Opcode = 64
)

// Version is a Linux kernel version, major.minor.
type Version struct {
	Major, Minor int
}

// String returns "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	return v.Major < w.Major || v.Major == w.Major && v.Minor < w.Minor
}

// IsZero reports whether v is the zero Version (meaning "never").
func (v Version) IsZero() bool { return v == Version{} }

// ParseVersion parses "7.2", "7.2.12" or "7.2.12+deb13-amd64" into a Version,
// ignoring everything after major.minor.
func ParseVersion(s string) (Version, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if len(fields) < 2 || !strings.HasPrefix(s, fields[0]) {
		return Version{}, fmt.Errorf("bad kernel version %q: want major.minor such as 7.2", s)
	}
	maj, err1 := strconv.Atoi(fields[0])
	min, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("bad kernel version %q: want major.minor such as 7.2", s)
	}
	return Version{maj, min}, nil
}

// FilterSince returns the first kernel with io_uring BPF filters and task
// restrictions (IORING_REGISTER_BPF_FILTER).
func FilterSince() Version { return Version{7, 0} }

// AlwaysAsync returns the opcodes whose requests the kernel's filters
// always see with IOSQE_ASYNC in sqe_flags, set or not: their preparation
// forces them to run asynchronously (seen on Linux 7.0 to 7.3; OPENAT and
// OPENAT2 do the same with O_CREAT, O_TRUNC or O_TMPFILE, and every
// request with IOSQE_IO_DRAIN). A condition on IOSQE_ASYNC cannot tell
// these requests apart.
func AlwaysAsync() []Opcode {
	return []Opcode{OpFsync, OpSyncFileRange, OpFallocate, OpMadvise, OpSplice, OpTee, OpShutdown, OpFtruncate}
}

// OpInfo describes one opcode.
type OpInfo struct {
	Op        Opcode
	Name      string  // short name, e.g. "SOCKET"; the kernel's is "IORING_OP_" + Name
	Since     Version // first kernel with the opcode
	View      View    // the per-opcode data view, ViewCommon if none
	PDUSize   uint8   // bytes of per-opcode data the kernel reports, 0 if none
	DataSince Version // first kernel that passes the data to filters
}

// KernelName returns the kernel's name for the opcode, "IORING_OP_" + Name.
func (o OpInfo) KernelName() string { return "IORING_OP_" + o.Name }

// HasData reports whether filters for this opcode see per-opcode data on
// kernel k.
func (o OpInfo) HasData(k Version) bool {
	return o.PDUSize > 0 && !k.Less(o.DataSince)
}

// Opcodes returns the table of all OpLast opcodes of Linux 7.3, indexed by
// opcode number. The slice is freshly allocated on each call.
func Opcodes() []OpInfo {
	return []OpInfo{
		{Op: 0, Name: "NOP", Since: Version{5, 1}},
		{Op: 1, Name: "READV", Since: Version{5, 1}},
		{Op: 2, Name: "WRITEV", Since: Version{5, 1}},
		{Op: 3, Name: "FSYNC", Since: Version{5, 1}},
		{Op: 4, Name: "READ_FIXED", Since: Version{5, 1}},
		{Op: 5, Name: "WRITE_FIXED", Since: Version{5, 1}},
		{Op: 6, Name: "POLL_ADD", Since: Version{5, 1}},
		{Op: 7, Name: "POLL_REMOVE", Since: Version{5, 1}},
		{Op: 8, Name: "SYNC_FILE_RANGE", Since: Version{5, 2}},
		{Op: 9, Name: "SENDMSG", Since: Version{5, 3}},
		{Op: 10, Name: "RECVMSG", Since: Version{5, 3}},
		{Op: 11, Name: "TIMEOUT", Since: Version{5, 4}},
		{Op: 12, Name: "TIMEOUT_REMOVE", Since: Version{5, 5}},
		{Op: 13, Name: "ACCEPT", Since: Version{5, 5}},
		{Op: 14, Name: "ASYNC_CANCEL", Since: Version{5, 5}},
		{Op: 15, Name: "LINK_TIMEOUT", Since: Version{5, 5}},
		{Op: 16, Name: "CONNECT", Since: Version{5, 5}, View: ViewConnect, PDUSize: PDUSizeConnect, DataSince: Version{7, 2}},
		{Op: 17, Name: "FALLOCATE", Since: Version{5, 6}},
		{Op: 18, Name: "OPENAT", Since: Version{5, 6}, View: ViewOpen, PDUSize: PDUSizeOpen, DataSince: Version{7, 0}},
		{Op: 19, Name: "CLOSE", Since: Version{5, 6}},
		{Op: 20, Name: "FILES_UPDATE", Since: Version{5, 6}},
		{Op: 21, Name: "STATX", Since: Version{5, 6}},
		{Op: 22, Name: "READ", Since: Version{5, 6}},
		{Op: 23, Name: "WRITE", Since: Version{5, 6}},
		{Op: 24, Name: "FADVISE", Since: Version{5, 6}},
		{Op: 25, Name: "MADVISE", Since: Version{5, 6}},
		{Op: 26, Name: "SEND", Since: Version{5, 6}},
		{Op: 27, Name: "RECV", Since: Version{5, 6}},
		{Op: 28, Name: "OPENAT2", Since: Version{5, 6}, View: ViewOpen, PDUSize: PDUSizeOpen, DataSince: Version{7, 0}},
		{Op: 29, Name: "EPOLL_CTL", Since: Version{5, 6}},
		{Op: 30, Name: "SPLICE", Since: Version{5, 7}},
		{Op: 31, Name: "PROVIDE_BUFFERS", Since: Version{5, 7}},
		{Op: 32, Name: "REMOVE_BUFFERS", Since: Version{5, 7}},
		{Op: 33, Name: "TEE", Since: Version{5, 8}},
		{Op: 34, Name: "SHUTDOWN", Since: Version{5, 11}},
		{Op: 35, Name: "RENAMEAT", Since: Version{5, 11}},
		{Op: 36, Name: "UNLINKAT", Since: Version{5, 11}},
		{Op: 37, Name: "MKDIRAT", Since: Version{5, 15}},
		{Op: 38, Name: "SYMLINKAT", Since: Version{5, 15}},
		{Op: 39, Name: "LINKAT", Since: Version{5, 15}},
		{Op: 40, Name: "MSG_RING", Since: Version{5, 18}},
		{Op: 41, Name: "FSETXATTR", Since: Version{5, 19}},
		{Op: 42, Name: "SETXATTR", Since: Version{5, 19}},
		{Op: 43, Name: "FGETXATTR", Since: Version{5, 19}},
		{Op: 44, Name: "GETXATTR", Since: Version{5, 19}},
		{Op: 45, Name: "SOCKET", Since: Version{5, 19}, View: ViewSocket, PDUSize: PDUSizeSocket, DataSince: Version{7, 0}},
		{Op: 46, Name: "URING_CMD", Since: Version{5, 19}},
		{Op: 47, Name: "SEND_ZC", Since: Version{6, 0}},
		{Op: 48, Name: "SENDMSG_ZC", Since: Version{6, 1}},
		{Op: 49, Name: "READ_MULTISHOT", Since: Version{6, 7}},
		{Op: 50, Name: "WAITID", Since: Version{6, 7}},
		{Op: 51, Name: "FUTEX_WAIT", Since: Version{6, 7}},
		{Op: 52, Name: "FUTEX_WAKE", Since: Version{6, 7}},
		{Op: 53, Name: "FUTEX_WAITV", Since: Version{6, 7}},
		{Op: 54, Name: "FIXED_FD_INSTALL", Since: Version{6, 8}},
		{Op: 55, Name: "FTRUNCATE", Since: Version{6, 9}},
		{Op: 56, Name: "BIND", Since: Version{6, 11}},
		{Op: 57, Name: "LISTEN", Since: Version{6, 11}},
		{Op: 58, Name: "RECV_ZC", Since: Version{6, 15}},
		{Op: 59, Name: "EPOLL_WAIT", Since: Version{6, 15}},
		{Op: 60, Name: "READV_FIXED", Since: Version{6, 15}},
		{Op: 61, Name: "WRITEV_FIXED", Since: Version{6, 15}},
		{Op: 62, Name: "PIPE", Since: Version{6, 16}},
		{Op: 63, Name: "NOP128", Since: Version{6, 18}},
		{Op: 64, Name: "URING_CMD128", Since: Version{6, 18}},
	}
}

// LookupOpcode finds an opcode by short name ("SOCKET"), kernel name
// ("IORING_OP_SOCKET"), either case, or decimal number ("45").
func LookupOpcode(s string) (OpInfo, bool) {
	ops := Opcodes()
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if n < OpLast {
			return ops[n], true
		}
		return OpInfo{}, false
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "IORING_OP_")
	for _, o := range ops {
		if o.Name == name {
			return o, true
		}
	}
	return OpInfo{}, false
}

// Info returns the table entry of op; ok is false for op >= OpLast.
func (op Opcode) Info() (info OpInfo, ok bool) {
	if int(op) >= OpLast {
		return OpInfo{Op: op, Name: fmt.Sprintf("OP_%d", op)}, false
	}
	return Opcodes()[op], true
}

// String returns the opcode's short name, or "OP_<n>" for unknown opcodes.
func (op Opcode) String() string {
	info, _ := op.Info()
	return info.Name
}
