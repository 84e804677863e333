package uringprobe

import (
	"encoding/binary"
	"unsafe"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// Request returns a request for op that the kernel's preparation accepts
// where ringfence knows how (so that a filter gets to judge it), with the
// SQE flags the preparation needs: IOSQE_FIXED_FILE for FIXED_FD_INSTALL,
// IOSQE_BUFFER_SELECT for READ_MULTISHOT. Build its SQE with SQE.
func Request(op abi.Opcode) kernel.Request {
	q := kernel.Request{Op: op}
	switch op {
	case abi.OpFixedFdInstall:
		q.Flags = abi.IOSQEFixedFile
	case abi.OpReadMultishot:
		q.Flags = abi.IOSQEBufferSelect
	case abi.OpSocket:
		q.Socket = kernel.SocketArgs{Domain: 2, Type: 1}
	case abi.OpOpenat, abi.OpOpenat2:
		q.Open = kernel.OpenArgs{Dir: -100, Path: "/proc/self/status"}
	case abi.OpConnect:
		q.Connect = kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet4(80, [4]byte{127, 0, 0, 1}), AddrLen: 16}
	}
	return q
}

// SQE returns the SQE for q. SOCKET, OPENAT, OPENAT2 and CONNECT are built
// by q.SQE; every other opcode gets descriptor -1 (so that it fails, after
// the filters, with EBADF or does nothing) and, where its preparation reads
// arguments, valid ones: paths under /nonexistent, a zeroed msghdr, a
// timespec, buffers. The memory is in SQE.Keep.
//
// Still refused by their preparation: LINK_TIMEOUT (needs a link), RECV_ZC
// (needs a zero-copy receive queue), NOP128 and URING_CMD128 (need a ring
// with 128-byte SQEs).
func SQE(q kernel.Request) kernel.SQE {
	switch q.Op {
	case abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect:
		return q.SQE()
	}
	s := kernel.SQE{Opcode: q.Op, Flags: q.Flags, UserData: q.UserData, FD: -1}
	const atFDCWD = -100
	buf := make([]byte, 512) // zeroed: a msghdr, a statx buffer, an epoll_event, a value
	ptr := func(b []byte) uint64 {
		s.Keep = append(s.Keep, b)
		return uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	path := func(p string) uint64 { return ptr(append([]byte(p), 0)) }
	switch q.Op {
	case abi.OpSendmsg, abi.OpRecvmsg, abi.OpSendmsgZc:
		s.Addr = ptr(buf) // struct msghdr, all zero
	case abi.OpTimeout:
		ts := make([]byte, 16)
		binary.NativeEndian.PutUint64(ts[8:], 1) // 1 ns
		s.Addr, s.Len = ptr(ts), 1
	case abi.OpFilesUpdate:
		fds := make([]byte, 4)
		binary.NativeEndian.PutUint32(fds, ^uint32(0))
		s.Addr, s.Len = ptr(fds), 1
	case abi.OpStatx:
		s.FD = atFDCWD
		s.Addr, s.Off, s.Len = path("/nonexistent/statx"), ptr(buf), 0x7ff
	case abi.OpEpollCtl:
		s.Addr, s.Len, s.Off = ptr(buf), 1, ^uint64(0) // EPOLL_CTL_ADD of fd -1
	case abi.OpProvideBuffers:
		s.FD, s.Addr, s.Len, s.BufIndex = 1, ptr(buf), 16, 0x7ff0
	case abi.OpRemoveBuffers:
		s.FD, s.BufIndex = 1, 0x7ff1
	case abi.OpRenameat, abi.OpLinkat:
		s.FD, s.Len = atFDCWD, uint32(0xffffff9c)
		s.Addr, s.Off = path("/nonexistent/old"), path("/nonexistent/new")
	case abi.OpUnlinkat, abi.OpMkdirat:
		s.FD, s.Addr = atFDCWD, path("/nonexistent/dir")
	case abi.OpSymlinkat:
		s.FD, s.Addr, s.Off = atFDCWD, path("target"), path("/nonexistent/link")
	case abi.OpFgetxattr, abi.OpFsetxattr:
		s.Addr, s.Off, s.Len = path("user.ringfence"), ptr(buf), 16
	case abi.OpGetxattr, abi.OpSetxattr:
		s.Addr, s.Off, s.Len, s.Addr3 = path("user.ringfence"), ptr(buf), 16, path("/nonexistent/file")
	case abi.OpReadMultishot:
		s.BufIndex = 0x7ff2 // buffer group; the flag is in q.Flags
	case abi.OpFutexWait:
		// FUTEX2_SIZE_U32; the word is 0, the expected value 1: EAGAIN.
		s.FD, s.Addr, s.Off, s.Addr3 = 2, ptr(buf[:8]), 1, ^uint64(0)
	case abi.OpFutexWake:
		s.FD, s.Addr, s.Off, s.Addr3 = 2, ptr(buf[:8]), 1, ^uint64(0)
	case abi.OpFutexWaitv:
		w := make([]byte, 24) // struct futex_waitv {val u64, uaddr u64, flags u32, rsvd u32}
		word := make([]byte, 8)
		binary.NativeEndian.PutUint64(w[0:], 1)
		binary.NativeEndian.PutUint64(w[8:], ptr(word))
		binary.NativeEndian.PutUint32(w[16:], 2)
		s.Addr, s.Len = ptr(w), 1
	}
	return s
}
