package kerneltest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// ppOps are the opcodes policy parity uses: every opcode with data, and NOP.
func ppOps() []abi.Opcode {
	return []abi.Opcode{abi.OpNop, abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect}
}

// ppFieldOps returns the operators generated for a field: those a policy
// author would write for it. Every field the five opcodes have is used.
// None is left out for being changed by the kernel's preparation: every
// such change (O_LARGEFILE, OPENAT's flag and mode masking and bit 26,
// SOCK_NONBLOCK and SOCK_CLOEXEC in the type, IOSQE_ASYNC on creating
// opens and drained requests, short CONNECT addresses) is in
// kernel.Request.Ctx, so the evaluator judges the context the kernel
// shows. What is limited is on the request side: IOSQE_IO_DRAIN is set
// only on a ring's last request (on 7.0 to 7.2 it marks every later
// request of the ring ASYNC, which no per-request prediction sees), and
// IOSQE_BUFFER_SELECT (these opcodes refuse it in preparation),
// FIXED_FILE and CQE_SKIP_SUCCESS other than on NOP are never submitted.
func ppFieldOps(field string) []policy.CmpOp {
	num := []policy.CmpOp{policy.Eq, policy.Ne, policy.In, policy.NotIn, policy.Lt, policy.Le, policy.Gt, policy.Ge, policy.Range, policy.NotRange}
	bits := []policy.CmpOp{policy.HasAll, policy.HasAny, policy.HasNone, policy.Masked, policy.Eq, policy.In}
	switch field {
	case "user_data":
		return append(num, policy.Masked, policy.HasAll, policy.HasAny, policy.HasNone)
	case "sqe_flags", "open.flags", "open.resolve":
		return bits
	case "open.mode":
		return append(bits, policy.Le, policy.Gt, policy.NotIn)
	case "socket.family", "connect.family":
		return []policy.CmpOp{policy.Eq, policy.Ne, policy.In, policy.NotIn}
	case "socket.type":
		return []policy.CmpOp{policy.Eq, policy.Ne, policy.In, policy.NotIn, policy.Masked, policy.Range}
	case "socket.protocol", "connect.port":
		return num
	case "connect.addr":
		return []policy.CmpOp{policy.CIDR, policy.CIDR, policy.NotCIDR}
	}
	return nil
}

// ppGen makes random policies and requests for them; requests are biased
// to the policy's boundaries (values, their neighbours, range ends, masked
// values with one bit changed, first/last addresses of prefixes and beyond).
type ppGen struct {
	pg     *policygen.Gen // policies and boundary values
	r      *rand.Rand     // pg's source, for the requests
	k      abi.Version    // kernel: CONNECT conditions only from 7.2
	dir    int32
	udpFD  int32
	udp6FD int32
	n      int // counter for fresh file names
}

func (g *ppGen) pick(n int) int { return g.r.IntN(n) }

func pickOf[T any](g *ppGen, vs ...T) T { return vs[g.pick(len(vs))] }

// constant returns a typical value for field.
func (g *ppGen) constant(field string) uint64 {
	switch field {
	case "user_data":
		switch g.pick(6) {
		case 0:
			return uint64(g.pick(4))
		case 1:
			return g.r.Uint64()
		case 2:
			return uint64(g.pick(3))<<32 | uint64(g.pick(3))
		case 3:
			return 0xffffffff + uint64(g.pick(3)) - 1
		case 4:
			return uint64(1) << g.pick(64)
		}
		return uint64(g.r.Uint32())
	case "sqe_flags":
		var v uint64
		for _, b := range []uint64{abi.IOSQEFixedFile, abi.IOSQEIODrain, abi.IOSQEIOLink, abi.IOSQEIOHardlink, abi.IOSQEAsync, abi.IOSQECQESkipSuccess} {
			if g.pick(3) == 0 {
				v |= b
			}
		}
		return v
	case "socket.family", "connect.family":
		return pickOf(g, unix.AF_INET, unix.AF_INET6, unix.AF_UNIX, unix.AF_NETLINK, unix.AF_PACKET, uint64(g.pick(50)))
	case "socket.type":
		return pickOf(g, unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET, uint64(g.pick(16)))
	case "socket.protocol":
		return pickOf(g, 0, 6, 17, 1, 58, 255, uint64(g.pick(300)), uint64(g.r.Uint32()))
	case "open.flags":
		var v uint64
		for _, b := range []uint64{unix.O_WRONLY, unix.O_RDWR, unix.O_CREAT, unix.O_EXCL, unix.O_TRUNC, unix.O_APPEND,
			unix.O_NONBLOCK, unix.O_DIRECTORY, unix.O_NOFOLLOW, unix.O_CLOEXEC, unix.O_PATH, unix.O_TMPFILE, unix.O_SYNC, 1 << 26} {
			if g.pick(5) == 0 {
				v |= b
			}
		}
		switch g.pick(8) {
		case 0:
			v |= uint64(1) << (20 + g.pick(44))
		case 1:
			v = uint64(g.pick(4))
		}
		return v
	case "open.mode":
		return pickOf(g, 0o644, 0o600, 0o777, 0o7777, 0o4000, 0o2000, uint64(g.pick(0o10000)), uint64(1)<<(12+g.pick(52)))
	case "open.resolve":
		v := uint64(g.pick(0x40))
		if g.pick(6) == 0 {
			v |= uint64(1) << (6 + g.pick(58))
		}
		return v
	case "connect.port":
		return pickOf(g, 80, 443, 0, 1, 1023, 1024, 8080, 65535, uint64(g.pick(65536)))
	}
	return 0
}

// seed makes g draw from seed and stream.
func (g *ppGen) seed(seed, stream uint64) {
	g.pg = policygen.New(seed, stream)
	g.r = g.pg.Rand()
}

// policy returns a random valid policy over the five opcodes
// (policygen.Policy with this test's opcodes, operators and values).
func (g *ppGen) policy() *policy.Policy {
	return g.pg.Policy(policygen.Options{
		Ops:       ppOps(),
		Kernel:    g.k,
		MaxRules:  6,
		MaxConds:  3,
		Operators: ppFieldOps,
		Value:     func(f policy.FieldSpec) uint64 { return g.constant(f.Name) },
	})
}

// value returns a request value for field: mostly near the policy's
// constants, else a typical one.
func (g *ppGen) value(p *policy.Policy, field string) uint64 {
	if b := policygen.PolicyBoundaries(p, field); len(b) > 0 && g.pick(4) != 0 {
		return b[g.pick(len(b))]
	}
	return g.constant(field)
}

// policyNets returns the prefixes of p's conditions.
func policyNets(p *policy.Policy) []netip.Prefix {
	var nets []netip.Prefix
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			nets = append(nets, c.Nets...)
		}
	}
	return nets
}

// address returns an address of size bytes (4 or 16) near one of the
// prefixes of that size in all: its first or last address, or one beyond.
func (g *ppGen) address(all []netip.Prefix, size int) []byte {
	var nets []netip.Prefix
	for _, n := range all {
		if (size == 4) == n.Addr().Is4() {
			nets = append(nets, n)
		}
	}
	b := make([]byte, size)
	if len(nets) == 0 || g.pick(5) == 0 {
		for i := range b {
			b[i] = byte(g.r.Uint32())
		}
		return b
	}
	n := nets[g.pick(len(nets))]
	copy(b, n.Addr().AsSlice())
	if g.pick(2) == 0 { // the last address of the prefix
		for i := n.Bits(); i < size*8; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	switch g.pick(4) { // or one beyond either end
	case 0:
		for i := size - 1; i >= 0; i-- {
			if b[i]++; b[i] != 0 {
				break
			}
		}
	case 1:
		for i := size - 1; i >= 0; i-- {
			if b[i]--; b[i] != 0xff {
				break
			}
		}
	}
	return b
}

// request returns a random request for p, as an SQE the test can submit:
// only SQE flags that change nothing about a single request's completion
// before the filter (see ppFieldOps).
//
// Two requests in three aim at a rule with conditions: its opcode, each of
// its conditions made to hold if one of a few boundary values does (as the
// evaluator sees the predicted context), then half of the time one field
// moved to another boundary value of its condition, often across the edge.
func (g *ppGen) request(p *policy.Policy) kernel.Request {
	var targets []policy.Rule
	for _, r := range p.Rules {
		if len(r.Conds) > 0 {
			targets = append(targets, r)
		}
	}
	if len(targets) == 0 || g.pick(3) == 0 {
		return g.baseRequest(p, pickOf(g, ppOps()...))
	}
	rule := targets[g.pick(len(targets))]
	q := g.baseRequest(p, pickOf(g, rule.Ops...))
	for _, c := range rule.Conds {
		for range 6 {
			t := g.withBoundary(q, c)
			if ctx, ok := t.Ctx(g.k); ok && c.Eval(ringfence.RequestFromCtx(ctx, binary.NativeEndian)) {
				q = t
				break
			}
		}
	}
	if g.pick(2) == 0 {
		q = g.withBoundary(q, pickOf(g, rule.Conds...))
	}
	return q
}

// safeFlags returns the SQE flags requests of op may carry.
func safeFlags(op abi.Opcode) uint8 {
	safe := uint8(abi.IOSQEAsync | abi.IOSQEIOLink | abi.IOSQEIOHardlink)
	if op == abi.OpNop {
		safe |= abi.IOSQEFixedFile | abi.IOSQECQESkipSuccess
	}
	return safe
}

// withBoundary returns q with c's field set to one of c's boundary values
// (an address near one of its prefixes for connect.addr).
func (g *ppGen) withBoundary(q kernel.Request, c policy.Cond) kernel.Request {
	if c.Field == "connect.addr" {
		size := pickOf(g, 4, 16)
		a := g.address(c.Nets, size)
		q.Connect.Addr = append([]byte(nil), q.Connect.Addr...)
		if size == 4 {
			binary.NativeEndian.PutUint16(q.Connect.Addr, unix.AF_INET)
			copy(q.Connect.Addr[4:], a)
		} else {
			if len(q.Connect.Addr) < 28 {
				q.Connect.Addr = append(q.Connect.Addr, make([]byte, 28-len(q.Connect.Addr))...)
			}
			binary.NativeEndian.PutUint16(q.Connect.Addr, unix.AF_INET6)
			copy(q.Connect.Addr[8:], a)
		}
		if g.pick(4) != 0 {
			q.Connect.AddrLen = uint32(len(q.Connect.Addr))
		}
		return q
	}
	b := policygen.Boundaries(c)
	if len(b) == 0 {
		return q
	}
	v := b[g.pick(len(b))]
	switch c.Field {
	case "user_data":
		q.UserData = v
	case "sqe_flags":
		q.Flags = uint8(v) & safeFlags(q.Op)
	case "socket.family":
		q.Socket.Domain = uint32(v)
	case "socket.type":
		q.Socket.Type = uint32(v)&0xf | q.Socket.Type&(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	case "socket.protocol":
		q.Socket.Protocol = uint32(v)
	case "open.flags":
		q.Open.Flags = v | q.Open.Flags&unix.O_LARGEFILE
	case "open.mode":
		q.Open.Mode = v
	case "open.resolve":
		q.Open.Resolve = v
	case "connect.family", "connect.port":
		q.Connect.Addr = append([]byte(nil), q.Connect.Addr...)
		if c.Field == "connect.port" {
			binary.BigEndian.PutUint16(q.Connect.Addr[2:], uint16(v))
			break
		}
		if v == unix.AF_INET6 && len(q.Connect.Addr) < 28 {
			q.Connect.Addr = append(q.Connect.Addr, make([]byte, 28-len(q.Connect.Addr))...)
			q.Connect.AddrLen = 28
		}
		binary.NativeEndian.PutUint16(q.Connect.Addr, uint16(v))
	}
	return q
}

// baseRequest returns a request for op with fields near p's constants.
func (g *ppGen) baseRequest(p *policy.Policy, op abi.Opcode) kernel.Request {
	q := kernel.Request{Op: op, UserData: g.value(p, "user_data"), Flags: uint8(g.value(p, "sqe_flags")) & safeFlags(op)}
	switch op {
	case abi.OpSocket:
		typ := uint32(g.value(p, "socket.type"))
		if g.pick(6) != 0 {
			typ &= 0xf // else it may be a type preparation refuses
		}
		if g.pick(3) == 0 {
			typ |= unix.SOCK_NONBLOCK
		}
		if g.pick(3) == 0 {
			typ |= unix.SOCK_CLOEXEC
		}
		q.Socket = kernel.SocketArgs{Domain: uint32(g.value(p, "socket.family")), Type: typ, Protocol: uint32(g.value(p, "socket.protocol"))}
	case abi.OpOpenat, abi.OpOpenat2:
		flags := g.value(p, "open.flags")
		if g.pick(3) == 0 {
			flags |= unix.O_LARGEFILE
		}
		g.n++
		q.Open = kernel.OpenArgs{Dir: g.dir, Path: pickOf(g, "f", "d", "absent", fmt.Sprintf("new%d", g.n)),
			Flags: flags, Mode: g.value(p, "open.mode")}
		if op == abi.OpOpenat2 {
			q.Open.Resolve = g.value(p, "open.resolve")
			q.Open.HowSize = pickOf[uint32](g, 24, 24, 24, 24, 32, 16)
		}
	case abi.OpConnect:
		fam := uint16(g.value(p, "connect.family"))
		if g.pick(3) != 0 {
			fam = pickOf[uint16](g, unix.AF_INET, unix.AF_INET6)
		}
		port := uint16(g.value(p, "connect.port"))
		var addr []byte
		switch fam {
		case unix.AF_INET:
			addr = kernel.SockaddrInet4(port, [4]byte(g.address(policyNets(p), 4)))
		case unix.AF_INET6:
			addr = kernel.SockaddrInet6(port, [16]byte(g.address(policyNets(p), 16)))
		default:
			addr = make([]byte, 16+g.pick(100))
			for i := range addr {
				addr[i] = byte(g.r.Uint32())
			}
			binary.NativeEndian.PutUint16(addr, fam)
		}
		n := uint32(len(addr))
		if g.pick(5) == 0 {
			n = min(n, pickOf[uint32](g, 0, 1, 2, 3, 8, 15, 16, 17, 23, 24, 27))
		}
		if fam == unix.AF_INET6 && g.pick(4) == 0 {
			n = 24 // SIN6_LEN_RFC2133
		}
		fd := int32(-1)
		if g.pick(4) == 0 {
			fd = pickOf(g, g.udpFD, g.udp6FD)
		}
		q.Connect = kernel.ConnectArgs{FD: fd, Addr: addr, AddrLen: n}
	}
	return q
}

// policyYAML writes p as a policy file, for messages (and for
// TestPolicyParityGenerator, which reads it back).
func policyYAML(p *policy.Policy) string {
	y, err := p.YAML()
	if err != nil {
		return fmt.Sprintf("(cannot write the policy: %v) %+v", err, p.Rules)
	}
	return string(y)
}
