package seccompprofile

import (
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Mapping says which system calls an io_uring opcode stands for.
type Mapping struct {
	Op abi.Opcode
	// Syscalls are the system calls whose effect the request has, in
	// groups. The profile allows the opcode through the ring when, for
	// every group, it allows at least one call of the group:
	//   - the calls of one group are equivalent for this opcode: each can
	//     do everything the request does that the group stands for, so a
	//     program the profile allows any one of gains nothing through the
	//     ring (FUTEX_WAIT is futex_wait or futex(2)'s FUTEX_WAIT_BITSET);
	//   - the groups are needed jointly: a request may have the effect of
	//     each, and filters cannot tell which (READ with offset -1 reads
	//     at the file position, read(2)'s effect; with an offset, that of
	//     pread64; preadv2 does both, so it is in both groups).
	// A call counts only when the profile allows it whatever its
	// arguments, except for opcodes with Fields, which have one group of
	// one call. Each group's first call is the one a bypass is reported
	// against. The names are the generic ones every 64-bit architecture
	// has (ppoll, not poll; epoll_pwait, not epoll_wait; pipe2, not
	// pipe): the request has the generic call's effect everywhere. Why
	// each grouping holds is in Table's comments and docs/seccomp.md.
	Syscalls [][]string
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
	// call: the opcode is one system call. anyOf: any one of calls can do
	// everything the request does. groups: each group is needed.
	call := func(op abi.Opcode, name string) Mapping { return Mapping{Op: op, Syscalls: [][]string{{name}}} }
	anyOf := func(op abi.Opcode, calls ...string) Mapping { return Mapping{Op: op, Syscalls: [][]string{calls}} }
	groups := func(op abi.Opcode, gs ...[]string) Mapping { return Mapping{Op: op, Syscalls: gs} }
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
	// Reads: offset -1 reads at the file position (read, readv, or
	// preadv2 with offset -1), any other offset at that offset (pread64,
	// preadv, or preadv2). The vector or single buffer changes only where
	// the bytes land in the program's memory, and the RWF flags a read
	// takes (HIPRI, NOWAIT, DONTCACHE) only how it waits or caches: so
	// the two groups, each needed, and preadv2 in both.
	atPos := []string{"read", "readv", "preadv2"}
	atOff := []string{"pread64", "preadv", "preadv2"}
	// Writes take every RWF flag too, and RWF_NOAPPEND writes at an
	// offset into a file opened O_APPEND, which write, writev, pwrite64
	// and pwritev cannot (pwrite64 appends there): only pwritev2 covers a
	// write request, and it covers it whole.
	// Sends: SEND and SEND_ZC take a buffer (or, bundled, several sent
	// as one) and a destination address, as sendto does; sendmsg and
	// sendmmsg (with one message) do everything sendto does. SENDMSG
	// carries ancillary data (SCM_RIGHTS, SCM_CREDENTIALS), which only
	// sendmsg and sendmmsg carry. Receives likewise.
	send := []string{"sendto", "sendmsg", "sendmmsg"}
	recv := []string{"recvfrom", "recvmsg", "recvmmsg"}
	t := []Mapping{
		ring(abi.OpNop, noop),
		groups(abi.OpReadv, atPos, atOff),
		call(abi.OpWritev, "pwritev2"),
		// Without IORING_FSYNC_DATASYNC the request is fsync, with it
		// fdatasync, whose effect fsync's includes: fsync alone covers it.
		call(abi.OpFsync, "fsync"),
		groups(abi.OpReadFixed, atPos, atOff),
		call(abi.OpWriteFixed, "pwritev2"),
		call(abi.OpPollAdd, "ppoll"),
		ring(abi.OpPollRemove, timers),
		call(abi.OpSyncFileRange, "sync_file_range"),
		anyOf(abi.OpSendmsg, "sendmsg", "sendmmsg"),
		anyOf(abi.OpRecvmsg, "recvmsg", "recvmmsg"),
		ring(abi.OpTimeout, timers),
		ring(abi.OpTimeoutRemove, timers),
		// ACCEPT takes accept4's flags (SOCK_NONBLOCK, SOCK_CLOEXEC),
		// which accept cannot set on the new descriptor: accept4 only.
		call(abi.OpAccept, "accept4"),
		ring(abi.OpAsyncCancel, timers),
		ring(abi.OpLinkTimeout, timers),
		call(abi.OpConnect, "connect"),
		call(abi.OpFallocate, "fallocate"),
		// openat only: its flags and mode become filter conditions, and
		// an openat2 allow, whose flags seccomp cannot see, is no reason
		// to allow what the profile's openat conditions deny.
		{Op: abi.OpOpenat, Syscalls: [][]string{{"openat"}}, Fields: map[int]string{2: "open.flags", 3: "open.mode"}},
		call(abi.OpClose, "close"),
		ring(abi.OpFilesUpdate, files),
		// statx reports what newfstatat cannot (birth time, mount id):
		// statx only.
		call(abi.OpStatx, "statx"),
		groups(abi.OpRead, atPos, atOff),
		call(abi.OpWrite, "pwritev2"),
		call(abi.OpFadvise, "fadvise64"),
		call(abi.OpMadvise, "madvise"),
		anyOf(abi.OpSend, send...),
		anyOf(abi.OpRecv, recv...),
		// openat2 only: its RESOLVE flags only narrow what openat opens,
		// but kept apart like OPENAT above.
		call(abi.OpOpenat2, "openat2"),
		call(abi.OpEpollCtl, "epoll_ctl"),
		call(abi.OpSplice, "splice"),
		ring(abi.OpProvideBuffers, buffers),
		ring(abi.OpRemoveBuffers, buffers),
		call(abi.OpTee, "tee"),
		call(abi.OpShutdown, "shutdown"),
		// RENAMEAT takes renameat2's flags (RENAME_EXCHANGE swaps two
		// names, which renameat cannot): renameat2 only.
		call(abi.OpRenameat, "renameat2"),
		call(abi.OpUnlinkat, "unlinkat"),
		call(abi.OpMkdirat, "mkdirat"),
		call(abi.OpSymlinkat, "symlinkat"),
		call(abi.OpLinkat, "linkat"),
		ring(abi.OpMsgRing, msgRing),
		call(abi.OpFsetxattr, "fsetxattr"),
		call(abi.OpSetxattr, "setxattr"),
		call(abi.OpFgetxattr, "fgetxattr"),
		call(abi.OpGetxattr, "getxattr"),
		{Op: abi.OpSocket, Syscalls: [][]string{{"socket"}}, Fields: map[int]string{0: "socket.family", 1: "socket.type", 2: "socket.protocol"}},
		{Op: abi.OpUringCmd, Fixed: policy.Deny, Why: cmd},
		anyOf(abi.OpSendZc, send...),
		anyOf(abi.OpSendmsgZc, "sendmsg", "sendmmsg"),
		// Multishot reads read pipes and sockets at the file position.
		anyOf(abi.OpReadMultishot, atPos...),
		call(abi.OpWaitid, "waitid"),
		// FUTEX_WAIT and FUTEX_WAKE wait on or wake one 32-bit futex
		// word with a bit mask (kernel io_uring/futex.c: futex_wait_setup
		// and futex_wake, the code futex(2)'s FUTEX_WAIT_BITSET and
		// FUTEX_WAKE_BITSET run; FUTEX2_PRIVATE is FUTEX_PRIVATE_FLAG,
		// sizes other than 32 bits are refused). So futex(2) does all
		// they do: Debian's containers-common denies futex_wait and
		// futex_wake (EPERM) while allowing futex(2).
		anyOf(abi.OpFutexWait, "futex_wait", "futex"),
		anyOf(abi.OpFutexWake, "futex_wake", "futex"),
		// FUTEX_WAITV waits on up to 128 futexes at once
		// (futex_wait_multiple); no futex(2) operation waits on more than
		// one, so futex_waitv only.
		call(abi.OpFutexWaitv, "futex_waitv"),
		call(abi.OpFixedFdInstall, "dup"),
		call(abi.OpFtruncate, "ftruncate"),
		call(abi.OpBind, "bind"),
		call(abi.OpListen, "listen"),
		anyOf(abi.OpRecvZc, recv...),
		call(abi.OpEpollWait, "epoll_pwait"),
		groups(abi.OpReadvFixed, atPos, atOff),
		call(abi.OpWritevFixed, "pwritev2"),
		call(abi.OpPipe, "pipe2"),
		ring(abi.OpNop128, noop),
		{Op: abi.OpUringCmd128, Fixed: policy.Deny, Why: cmd},
	}
	return t
}

// Calls returns every system call m names, each once, in order.
func (m Mapping) Calls() []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range m.Syscalls {
		for _, c := range g {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
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
