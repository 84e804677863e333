package kernel

import (
	"encoding/binary"
	"unsafe"

	"github.com/ringfence/ringfence/abi"
)

// Request describes one io_uring request by meaning. SQE builds the SQE
// to submit; Ctx predicts the context the kernel's filters see for it.
// Only the part of Request matching Op is used.
type Request struct {
	Op       abi.Opcode
	UserData uint64
	Flags    uint8 // IOSQE_* flags of the SQE

	Socket  SocketArgs  // for abi.OpSocket
	Open    OpenArgs    // for abi.OpOpenat and abi.OpOpenat2
	Connect ConnectArgs // for abi.OpConnect
}

// SocketArgs are the arguments of a SOCKET request, as socket(2) takes them.
type SocketArgs struct {
	Domain, Type, Protocol uint32
}

// OpenArgs are the arguments of an OPENAT or OPENAT2 request.
type OpenArgs struct {
	Dir     int32  // directory fd; unix.AT_FDCWD (-100) for the working directory
	Path    string // the path to open
	Flags   uint64 // open flags; OPENAT passes the low 32 bits
	Mode    uint64 // creation mode; OPENAT passes the low 32 bits
	Resolve uint64 // RESOLVE_* flags, OPENAT2 only
	HowSize uint32 // OPENAT2: the size given for struct open_how; 0 means 24
}

// ConnectArgs are the arguments of a CONNECT request.
type ConnectArgs struct {
	FD      int32  // the socket
	Addr    []byte // the socket address bytes (see SockaddrInet4, SockaddrInet6)
	AddrLen uint32 // the length passed to the kernel; may differ from len(Addr)
}

// openHowSize is sizeof(struct open_how) (OPEN_HOW_SIZE_VER0).
const openHowSize = 24

// SQE returns the SQE for q. The Go memory it points to (the path, the
// open_how, the address) is listed in SQE.Keep, so a Ring keeps it alive
// until the request completes.
func (q Request) SQE() SQE {
	s := SQE{Opcode: q.Op, Flags: q.Flags, UserData: q.UserData}
	switch q.Op {
	case abi.OpSocket:
		s.FD = int32(q.Socket.Domain)
		s.Off = uint64(q.Socket.Type)
		s.Len = q.Socket.Protocol
	case abi.OpOpenat:
		path := cString(q.Open.Path)
		s.FD = q.Open.Dir
		s.Addr = uint64(uintptr(unsafe.Pointer(&path[0])))
		s.Len = uint32(q.Open.Mode)
		s.OpFlags = uint32(q.Open.Flags)
		s.Keep = []any{path}
	case abi.OpOpenat2:
		path := cString(q.Open.Path)
		size := q.Open.HowSize
		if size == 0 {
			size = openHowSize
		}
		how := make([]byte, max(size, openHowSize))
		binary.NativeEndian.PutUint64(how[0:], q.Open.Flags)
		binary.NativeEndian.PutUint64(how[8:], q.Open.Mode)
		binary.NativeEndian.PutUint64(how[16:], q.Open.Resolve)
		s.FD = q.Open.Dir
		s.Addr = uint64(uintptr(unsafe.Pointer(&path[0])))
		s.Off = uint64(uintptr(unsafe.Pointer(&how[0])))
		s.Len = size
		s.Keep = []any{path, how}
	case abi.OpConnect:
		s.FD = q.Connect.FD
		if len(q.Connect.Addr) > 0 {
			addr := append([]byte(nil), q.Connect.Addr...)
			s.Addr = uint64(uintptr(unsafe.Pointer(&addr[0])))
			s.Keep = []any{addr}
		}
		s.Off = uint64(q.Connect.AddrLen)
	}
	return s
}

func cString(s string) []byte { return append([]byte(s), 0) }

// Linux open flag bits used by the preparation of OPENAT and OPENAT2.
const (
	oCreat     = 0o100
	oTrunc     = 0o1000
	oLargefile = 0o100000
	oDirectory = 0o200000
	oNofollow  = 0o400000
	oCloexec   = 0o2000000
	oPath      = 0o10000000
	oTmpfile   = 0o20000000 // __O_TMPFILE
	// validOpenFlags is VALID_OPEN_FLAGS on x86-64.
	validOpenFlags = 0o3 | oCreat | 0o200 | 0o400 | oTrunc | 0o2000 | 0o4000 | 0o4000000 | 0o10000 |
		0o20000 | 0o40000 | oLargefile | oDirectory | oNofollow | 0o1000000 | oCloexec | oPath | oTmpfile
	oPathFlags = oDirectory | oNofollow | oPath | oCloexec
	// oBit26 (0o400000000) is an open flag Linux 7.2 added: from 7.2 on
	// OPENAT keeps it, with O_PATH too. (Seen on Debian 7.2.12 and 7.3.4;
	// 7.0.13 and 7.1.13 drop it.)
	oBit26      = 0x4000000
	sockNonblk  = 0o4000
	sockCloexec = 0o2000000
	sockTypeMax = 0xf // SOCK_TYPE_MASK
	afInet      = 2
	afInet6     = 10
	// sin6LenRFC2133 is the size of a sockaddr_in6 without sin6_scope_id,
	// the shortest IPv6 address the kernel takes.
	sin6LenRFC2133 = 24
)

// SocketTypeFlagsStrippedSince is the first kernel whose SOCKET context
// shows the socket type without SOCK_NONBLOCK and SOCK_CLOEXEC.
func SocketTypeFlagsStrippedSince() abi.Version { return abi.Version{Major: 7, Minor: 3} }

// OpenFlagBit26Since is the first kernel whose OPENAT keeps open flag
// 0x4000000 (bit 26) instead of dropping it as invalid.
func OpenFlagBit26Since() abi.Version { return abi.Version{Major: 7, Minor: 2} }

// Ctx predicts the context (struct io_uring_bpf_ctx) that kernel k gives
// filters for q, after its preparation of the request. prepOK is false
// when ringfence expects the preparation itself to refuse the request, so
// that no filter runs and the request fails with the preparation's error.
//
// What the preparation changes, on x86-64:
//   - IOSQE_IO_DRAIN together with IOSQE_CQE_SKIP_SUCCESS fails with
//     EOPNOTSUPP before any filter. (A ring that has seen CQE_SKIP_SUCCESS
//     once refuses every later IO_DRAIN the same way; that depends on the
//     ring's history, which a single request cannot show.)
//   - sqe_flags: IOSQE_IO_DRAIN brings IOSQE_ASYNC; an OPENAT or OPENAT2
//     with O_CREAT, O_TRUNC or O_TMPFILE is marked IOSQE_ASYNC.
//   - OPENAT: flags are masked to the valid open flags of kernel k (only
//     O_PATH's companions with O_PATH; bit 26 from OpenFlagBit26Since), mode is masked to 07777 and dropped unless
//     O_CREAT or O_TMPFILE; OPENAT and OPENAT2 get O_LARGEFILE unless O_PATH.
//   - SOCKET: the type loses SOCK_NONBLOCK and SOCK_CLOEXEC from
//     SocketTypeFlagsStrippedSince on.
//   - CONNECT (7.2+): the family when addr_len covers it, the port and
//     address only when addr_len covers a whole sockaddr_in (16 bytes) or
//     a sockaddr_in6 up to its address (24 bytes, without sin6_scope_id).
func (q Request) Ctx(k abi.Version) (c abi.Ctx, prepOK bool) {
	ne := binary.NativeEndian
	c.UserData = q.UserData
	c.Opcode = uint8(q.Op)
	c.SQEFlags = q.Flags & abi.IOSQEValidFlagsMask
	if q.Flags&abi.IOSQEIODrain != 0 {
		if q.Flags&abi.IOSQECQESkipSuccess != 0 {
			// EOPNOTSUPP: CQE_SKIP_SUCCESS disables IO_DRAIN on the
			// ring, this SQE included.
			return c, false
		}
		c.SQEFlags |= abi.IOSQEAsync
	}
	info, _ := q.Op.Info()
	hasData := info.HasData(k)
	switch q.Op {
	case abi.OpSocket:
		t := q.Socket.Type
		if t&^uint32(sockTypeMax|sockNonblk|sockCloexec) != 0 {
			return c, false
		}
		if !k.Less(SocketTypeFlagsStrippedSince()) {
			t &= sockTypeMax
		}
		if hasData {
			c.SetSocket(abi.SocketData{Family: q.Socket.Domain, Type: t, Protocol: q.Socket.Protocol}, ne)
		}
	case abi.OpOpenat, abi.OpOpenat2:
		var o abi.OpenData
		if q.Op == abi.OpOpenat {
			valid, pathFlags := uint64(validOpenFlags), uint64(oPathFlags)
			if !k.Less(OpenFlagBit26Since()) {
				valid |= oBit26
				pathFlags |= oBit26
			}
			flags := uint64(uint32(q.Open.Flags)) & valid
			mode := uint64(uint16(q.Open.Mode)) & 0o7777
			if flags&oPath != 0 {
				flags &= pathFlags
			}
			if flags&(oCreat|oTmpfile) == 0 {
				mode = 0
			}
			o = abi.OpenData{Flags: flags, Mode: mode}
		} else {
			if q.Open.HowSize != 0 && q.Open.HowSize < openHowSize {
				return c, false
			}
			o = abi.OpenData{Flags: q.Open.Flags, Mode: q.Open.Mode, Resolve: q.Open.Resolve}
		}
		if o.Flags&oPath == 0 {
			o.Flags |= oLargefile
		}
		if o.Flags&(oTrunc|oCreat|oTmpfile) != 0 {
			c.SQEFlags |= abi.IOSQEAsync
		}
		if q.Flags&abi.IOSQEFixedFile != 0 {
			return c, false // EBADF: an open has no file to look up
		}
		if hasData {
			c.SetOpen(o, ne)
		}
	case abi.OpConnect:
		n := q.Connect.AddrLen
		if int32(n) < 0 || n > 128 || int(n) > len(q.Connect.Addr) {
			return c, false // EINVAL, or EFAULT reading past the buffer
		}
		if !hasData {
			break
		}
		var d abi.ConnectData
		a := q.Connect.Addr
		if n >= 2 {
			d.Family = uint32(ne.Uint16(a))
		}
		switch {
		case d.Family == afInet && n >= 16:
			d.Port = binary.BigEndian.Uint16(a[2:])
			copy(d.Addr[:4], a[4:8])
		case d.Family == afInet6 && n >= sin6LenRFC2133:
			d.Port = binary.BigEndian.Uint16(a[2:])
			copy(d.Addr[:], a[8:24])
		}
		c.SetConnect(d, ne)
	}
	return c, true
}

// SockaddrInet4 returns a struct sockaddr_in (16 bytes) for port and addr.
func SockaddrInet4(port uint16, addr [4]byte) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, afInet)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], addr[:])
	return b
}

// SockaddrInet6 returns a struct sockaddr_in6 (28 bytes) for port and addr.
func SockaddrInet6(port uint16, addr [16]byte) []byte {
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, afInet6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], addr[:])
	return b
}
