package seccompprofile

import (
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Mapping says which system calls an io_uring opcode stands for.
type Mapping struct {
	Op abi.Opcode
	// Syscalls are the system calls whose effect the request has. A
	// request may have the effect of any of them (READ with an offset is
	// pread64, without one read, with RWF flags preadv2), and io_uring
	// filters cannot tell which, so the opcode is allowed through the ring
	// only when the profile allows every one. The names are the generic
	// ones every 64-bit architecture has (ppoll, not poll; epoll_pwait,
	// not epoll_wait; pipe2, not pipe): the request has the generic call's
	// effect everywhere.
	Syscalls []string
	// Fields maps a system-call argument (0-5) to the policy field an
	// io_uring filter sees it as. An argument not listed is not visible
	// to filters (a path, a socket address or an open_how in memory, a
	// file descriptor).
	Fields map[int]string
	// Fixed is the decision for an opcode with no system-call counterpart
	// (Syscalls empty), explained by Why.
	Fixed policy.Action
	Why   string
}

// Table returns the mapping of every opcode of abi.Opcodes (Linux 7.3), in
// opcode order. docs/seccomp.md has the same table, checked by a test.
func Table() []Mapping {
	rw := func(op abi.Opcode, calls ...string) Mapping { return Mapping{Op: op, Syscalls: calls} }
	ring := func(op abi.Opcode, why string) Mapping { return Mapping{Op: op, Fixed: policy.Allow, Why: why} }
	const (
		inRing  = "works on the ring's own state, like no system call: a program that may use io_uring at all needs it"
		noop    = "does nothing"
		timers  = "a timer or a cancellation inside the ring; waiting is no system call a profile denies"
		buffers = "hands the ring buffers of the program's own memory"
		files   = "updates the ring's table of registered files from descriptors the program already has"
		msgRing = "posts a completion (or passes a registered file) to another io_uring ring of the program; no system call does this, and the descriptor passed is one the program already has"
		cmd     = "passes a command to a driver or file (NVMe or ublk passthrough, socket commands): no profile rule names what it reaches and no filter can inspect it, so a derived policy denies it; a program that needs it allows it in its own policy, knowingly (extends)"
	)
	t := []Mapping{
		ring(abi.OpNop, noop),
		rw(abi.OpReadv, "readv", "preadv", "preadv2"),
		rw(abi.OpWritev, "writev", "pwritev", "pwritev2"),
		rw(abi.OpFsync, "fsync", "fdatasync"),
		rw(abi.OpReadFixed, "read", "pread64", "preadv2"),
		rw(abi.OpWriteFixed, "write", "pwrite64", "pwritev2"),
		rw(abi.OpPollAdd, "ppoll"),
		ring(abi.OpPollRemove, timers),
		rw(abi.OpSyncFileRange, "sync_file_range"),
		rw(abi.OpSendmsg, "sendmsg"),
		rw(abi.OpRecvmsg, "recvmsg"),
		ring(abi.OpTimeout, timers),
		ring(abi.OpTimeoutRemove, timers),
		rw(abi.OpAccept, "accept4"),
		ring(abi.OpAsyncCancel, timers),
		ring(abi.OpLinkTimeout, timers),
		rw(abi.OpConnect, "connect"),
		rw(abi.OpFallocate, "fallocate"),
		{Op: abi.OpOpenat, Syscalls: []string{"openat"}, Fields: map[int]string{2: "open.flags", 3: "open.mode"}},
		rw(abi.OpClose, "close"),
		ring(abi.OpFilesUpdate, files),
		rw(abi.OpStatx, "statx"),
		rw(abi.OpRead, "read", "pread64", "preadv2"),
		rw(abi.OpWrite, "write", "pwrite64", "pwritev2"),
		rw(abi.OpFadvise, "fadvise64"),
		rw(abi.OpMadvise, "madvise"),
		rw(abi.OpSend, "sendto"),
		rw(abi.OpRecv, "recvfrom"),
		rw(abi.OpOpenat2, "openat2"),
		rw(abi.OpEpollCtl, "epoll_ctl"),
		rw(abi.OpSplice, "splice"),
		ring(abi.OpProvideBuffers, buffers),
		ring(abi.OpRemoveBuffers, buffers),
		rw(abi.OpTee, "tee"),
		rw(abi.OpShutdown, "shutdown"),
		rw(abi.OpRenameat, "renameat2"),
		rw(abi.OpUnlinkat, "unlinkat"),
		rw(abi.OpMkdirat, "mkdirat"),
		rw(abi.OpSymlinkat, "symlinkat"),
		rw(abi.OpLinkat, "linkat"),
		ring(abi.OpMsgRing, msgRing),
		rw(abi.OpFsetxattr, "fsetxattr"),
		rw(abi.OpSetxattr, "setxattr"),
		rw(abi.OpFgetxattr, "fgetxattr"),
		rw(abi.OpGetxattr, "getxattr"),
		{Op: abi.OpSocket, Syscalls: []string{"socket"}, Fields: map[int]string{0: "socket.family", 1: "socket.type", 2: "socket.protocol"}},
		{Op: abi.OpUringCmd, Fixed: policy.Deny, Why: cmd},
		rw(abi.OpSendZc, "sendto"),
		rw(abi.OpSendmsgZc, "sendmsg"),
		rw(abi.OpReadMultishot, "read"),
		rw(abi.OpWaitid, "waitid"),
		rw(abi.OpFutexWait, "futex_wait"),
		rw(abi.OpFutexWake, "futex_wake"),
		rw(abi.OpFutexWaitv, "futex_waitv"),
		rw(abi.OpFixedFdInstall, "dup"),
		rw(abi.OpFtruncate, "ftruncate"),
		rw(abi.OpBind, "bind"),
		rw(abi.OpListen, "listen"),
		rw(abi.OpRecvZc, "recvfrom"),
		rw(abi.OpEpollWait, "epoll_pwait"),
		rw(abi.OpReadvFixed, "readv", "preadv", "preadv2"),
		rw(abi.OpWritevFixed, "writev", "pwritev", "pwritev2"),
		rw(abi.OpPipe, "pipe2"),
		ring(abi.OpNop128, noop),
		{Op: abi.OpUringCmd128, Fixed: policy.Deny, Why: cmd},
	}
	return t
}

// Lookup returns the mapping of op.
func Lookup(op abi.Opcode) (Mapping, bool) {
	for _, m := range Table() {
		if m.Op == op {
			return m, true
		}
	}
	return Mapping{}, false
}
