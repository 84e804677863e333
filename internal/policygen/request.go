package policygen

import (
	"net/netip"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Request returns a random request for p, as the evaluator sees it: its
// opcode one of ops (nil: TestOps), now and then any opcode, and each field
// most often at one of the boundaries of p's conditions on it (Boundaries,
// AddrBoundaries, sometimes with the other 32-bit half changed), else a
// random value, sometimes with the bits normalisation ignores set.
func (g *Gen) Request(p *policy.Policy, ops []abi.Opcode) policy.Request {
	if ops == nil {
		ops = TestOps()
	}
	r := policy.Request{Op: ops[g.Pick(len(ops))]}
	if g.Pick(20) == 0 {
		r.Op = abi.Opcode(g.Pick(abi.OpLast))
	}
	r.UserData = g.fieldValue(p, "user_data")
	r.SQEFlags = uint8(g.fieldValue(p, "sqe_flags"))
	r.Socket = abi.SocketData{
		Family:   uint32(g.fieldValue(p, "socket.family")),
		Type:     uint32(g.fieldValue(p, "socket.type")),
		Protocol: uint32(g.fieldValue(p, "socket.protocol")),
	}
	r.Open = abi.OpenData{
		Flags:   g.fieldValue(p, "open.flags"),
		Mode:    g.fieldValue(p, "open.mode"),
		Resolve: g.fieldValue(p, "open.resolve"),
	}
	r.Connect.Family = uint32(g.fieldValue(p, "connect.family"))
	if g.Pick(3) != 0 {
		r.Connect.Family = []uint32{policy.AFInet, policy.AFInet6}[g.Pick(2)]
	}
	r.Connect.Port = uint16(g.fieldValue(p, "connect.port"))
	var addrs []netip.Addr
	for _, rule := range p.Rules {
		for _, c := range rule.Conds {
			addrs = append(addrs, AddrBoundaries(c)...)
		}
	}
	if len(addrs) > 0 && g.Pick(4) != 0 {
		a := addrs[g.Pick(len(addrs))]
		b := a.AsSlice()
		copy(r.Connect.Addr[:], b)
		if len(b) == 4 && g.Pick(3) != 0 {
			r.Connect.Family = policy.AFInet
		} else if len(b) == 16 && g.Pick(3) != 0 {
			r.Connect.Family = policy.AFInet6
		}
	} else {
		for i := range r.Connect.Addr {
			r.Connect.Addr[i] = byte(g.r.Uint32())
		}
	}
	return r
}

// fieldValue returns a value for a request field, most often a boundary
// of one of p's conditions on it.
func (g *Gen) fieldValue(p *policy.Policy, name string) uint64 {
	f, _ := policy.LookupField(name)
	pool := PolicyBoundaries(p, name)
	var v uint64
	if len(pool) > 0 && g.Pick(4) != 0 {
		v = pool[g.Pick(len(pool))]
		switch g.Pick(6) {
		case 0:
			v ^= uint64(1) << (32 + g.Pick(32))
		case 1:
			v = v&0xffffffff | uint64(g.r.Uint32())<<32
		}
	} else {
		v = g.Value(f)
	}
	if f.Ignore != 0 && g.Pick(2) == 0 {
		v |= f.Ignore & uint64(g.r.Uint32())
	}
	return v & f.Max()
}
