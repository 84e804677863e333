package compile

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/policy"
)

var (
	long = flag.Bool("long", false, "run the long equivalence test (millions of policy/request pairs)")
	seed = flag.Uint64("seed", 1, "seed of the equivalence test's random policies and requests")
)

// gen makes random policies and requests biased to the values where a
// compiler is most likely wrong: set members and their neighbours, range
// ends, CIDR edges, the edges of the two halves of 64-bit values, and the
// bits normalisation ignores.
type gen struct {
	r *rand.Rand
}

// testOps are the opcodes random policies and requests use: those with
// data, and a few without.
var testOps = []abi.Opcode{abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect, abi.OpNop, abi.OpRead, abi.OpUringCmd}

func (g gen) pick(n int) int { return g.r.IntN(n) }

// value returns a random interesting value for a field of the given width.
func (g gen) value(f policy.FieldSpec) uint64 {
	var v uint64
	switch g.pick(8) {
	case 0:
		v = uint64(g.pick(4))
	case 1:
		v = g.r.Uint64()
	case 2:
		v = uint64(g.r.Uint32())
	case 3:
		v = uint64(g.pick(3))<<32 | uint64(g.pick(3))
	case 4:
		v = 0xffffffff + uint64(g.pick(3)) - 1
	case 5:
		v = uint64(1) << g.pick(64)
	case 6:
		v = ^uint64(0) - uint64(g.pick(2))
	default:
		v = uint64(g.pick(64))
	}
	return v & f.Max()
}

func (g gen) cond(field policy.FieldSpec) policy.Cond {
	c := policy.Cond{Field: field.Name}
	if field.IsAddr() {
		c.Op = policy.CIDR
		if g.pick(3) == 0 {
			c.Op = policy.NotCIDR
		}
		for range 1 + g.pick(4) {
			c.Nets = append(c.Nets, g.prefix())
		}
		return c
	}
	ops := []policy.CmpOp{policy.Eq, policy.Ne, policy.In, policy.NotIn, policy.Lt, policy.Le, policy.Gt, policy.Ge,
		policy.Range, policy.NotRange, policy.Masked, policy.HasAll, policy.HasAny, policy.HasNone}
	c.Op = ops[g.pick(len(ops))]
	// Policies never name the bits normalisation ignores (the parser
	// refuses them); the compiler must agree with the evaluator anyway.
	clean := func(v uint64) uint64 {
		if g.pick(8) == 0 {
			return v | field.Ignore&uint64(g.r.Uint32())
		}
		return v &^ field.Ignore
	}
	switch c.Op {
	case policy.In, policy.NotIn:
		n := 1 + g.pick(6)
		if g.pick(6) == 0 {
			n = 20 + g.pick(300)
		}
		base := g.value(field)
		for range n {
			v := g.value(field)
			if g.pick(2) == 0 {
				v = base + uint64(g.pick(40))
			}
			c.Values = append(c.Values, clean(v&field.Max()))
		}
	case policy.Range, policy.NotRange:
		a, b := g.value(field), g.value(field)
		if g.pick(4) != 0 && a > b {
			a, b = b, a
		}
		c.Values = []uint64{a, b}
	case policy.Masked:
		m := g.value(field) | g.value(field)
		v := g.value(field) & m
		if g.pick(8) == 0 {
			v = g.value(field)
		}
		c.Values = []uint64{clean(m), clean(v)}
	case policy.HasAll, policy.HasAny, policy.HasNone:
		b := g.value(field)
		if g.pick(3) == 0 {
			b = uint64(1) << g.pick(field.Bits)
		}
		c.Values = []uint64{clean(b)}
	default:
		c.Values = []uint64{g.value(field)}
	}
	return c
}

func (g gen) prefix() netip.Prefix {
	var a netip.Addr
	var bits int
	switch g.pick(3) {
	case 0, 1:
		a = netip.AddrFrom4([4]byte{byte(g.pick(3) * 127), byte(g.pick(256)), byte(g.pick(3)), byte(g.pick(256))})
		bits = []int{0, 1, 8, 16, 24, 25, 31, 32}[g.pick(8)]
	default:
		var b [16]byte
		b[0] = byte(g.pick(3)) * 0x7f
		b[1] = byte(g.pick(256))
		b[5] = byte(g.pick(3))
		b[15] = byte(g.pick(3))
		if g.pick(4) == 0 {
			b = [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1} // IPv4-mapped
		}
		a = netip.AddrFrom16(b)
		bits = []int{0, 8, 31, 32, 33, 48, 64, 96, 127, 128}[g.pick(10)]
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// policy returns a random policy; data says whether conditions may use
// CONNECT fields.
func (g gen) policy(connect bool) *policy.Policy {
	p := &policy.Policy{Version: 1, Default: policy.Action(g.pick(2)), File: "random.yaml"}
	fields := policy.Fields()
	for range 1 + g.pick(8) {
		r := policy.Rule{Action: policy.Action(g.pick(2)), Name: fmt.Sprint("r", len(p.Rules))}
		seen := map[abi.Opcode]bool{}
		for range 1 + g.pick(3) {
			op := testOps[g.pick(len(testOps))]
			if !seen[op] {
				seen[op] = true
				r.Ops = append(r.Ops, op)
			}
		}
		// Fields every opcode of the rule has (Compile refuses the
		// others), with conditions Validate accepts.
		var cands []policy.FieldSpec
		for _, f := range fields {
			if (f.View == abi.ViewConnect) && !connect {
				continue
			}
			all := true
			for _, op := range r.Ops {
				all = all && policy.FieldApplies(op, f.Name)
			}
			if all {
				cands = append(cands, f)
			}
		}
		for range g.pick(4) {
			for range 20 {
				c := g.cond(cands[g.pick(len(cands))])
				one := &policy.Policy{Version: 1, Rules: []policy.Rule{{Ops: r.Ops, Conds: []policy.Cond{c}}}}
				if one.Validate() == nil {
					r.Conds = append(r.Conds, c)
					break
				}
			}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// near returns v or a neighbour of v.
func (g gen) near(v uint64) uint64 { return v + uint64(g.pick(3)) - 1 }

// fieldValue returns a value for a request field, often one a condition
// of p names (or its neighbour, or its other 64-bit half changed).
func (g gen) fieldValue(p *policy.Policy, name string) uint64 {
	f, _ := policy.LookupField(name)
	var pool []uint64
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			if c.Field == name {
				pool = append(pool, c.Values...)
			}
		}
	}
	var v uint64
	if len(pool) > 0 && g.pick(4) != 0 {
		v = g.near(pool[g.pick(len(pool))])
		switch g.pick(6) {
		case 0:
			v ^= uint64(1) << (32 + g.pick(32))
		case 1:
			v = v&0xffffffff | uint64(g.r.Uint32())<<32
		}
	} else {
		v = g.value(f)
	}
	if f.Ignore != 0 && g.pick(2) == 0 {
		v |= f.Ignore & uint64(g.r.Uint32())
	}
	return v & f.Max()
}

func (g gen) request(p *policy.Policy) policy.Request {
	r := policy.Request{Op: testOps[g.pick(len(testOps))]}
	if g.pick(20) == 0 {
		r.Op = abi.Opcode(g.pick(abi.OpLast))
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
	if g.pick(3) != 0 {
		r.Connect.Family = []uint32{policy.AFInet, policy.AFInet6}[g.pick(2)]
	}
	r.Connect.Port = uint16(g.fieldValue(p, "connect.port"))
	var nets []netip.Prefix
	for _, rule := range p.Rules {
		for _, c := range rule.Conds {
			nets = append(nets, c.Nets...)
		}
	}
	if len(nets) > 0 && g.pick(4) != 0 {
		n := nets[g.pick(len(nets))]
		b := n.Addr().AsSlice()
		// The first or last address of the prefix, or one beyond.
		if g.pick(2) == 0 {
			for i := n.Bits(); i < len(b)*8; i++ {
				b[i/8] |= 0x80 >> (i % 8)
			}
		}
		switch g.pick(4) {
		case 0:
			for i := len(b) - 1; i >= 0; i-- {
				b[i]++
				if b[i] != 0 {
					break
				}
			}
		case 1:
			for i := len(b) - 1; i >= 0; i-- {
				b[i]--
				if b[i] != 0xff {
					break
				}
			}
		}
		copy(r.Connect.Addr[:], b)
		if len(b) == 4 && g.pick(3) != 0 {
			r.Connect.Family = policy.AFInet
		} else if len(b) == 16 && g.pick(3) != 0 {
			r.Connect.Family = policy.AFInet6
		}
	} else {
		for i := range r.Connect.Addr {
			r.Connect.Addr[i] = byte(g.r.Uint32())
		}
	}
	return r
}

// TestEquivalence compiles random policies and checks that the plan, run by
// the emulator, decides random requests exactly as the reference evaluator
// does, for both byte orders, both kernels generations and the naive
// compile. With -long it runs millions of pairs.
func TestEquivalence(t *testing.T) {
	policies, requests := 600, 300
	if *long {
		policies, requests = 40000, 600
	}
	g := gen{rand.New(rand.NewPCG(*seed, 2))}
	pairs := 0
	for n := range policies {
		connect := n%2 == 0
		p := g.policy(connect)
		k := abi.Version{Major: 7, Minor: 2}
		if !connect && n%4 == 1 {
			k = abi.Version{Major: 7, Minor: 0}
		}
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, naive := range []bool{false, true} {
				if naive && n%5 != 0 {
					continue
				}
				plan, err := Compile(p, Options{Kernel: k, ByteOrder: bo, Naive: naive})
				if err != nil {
					t.Fatalf("policy %d: %v\n%s", n, err, dumpPolicy(p))
				}
				for range requests {
					r := g.request(p)
					want := p.Decide(r)
					w := cbpf.WordsOf(r.CtxFor(bo, k).Encode(bo), bo)
					if got := plan.Allows(&w); got != want.Allow {
						t.Fatalf("policy %d (%v, kernel %v, naive %v): request %+v: plan allows=%v, evaluator %+v\n%s\n%s",
							n, bo, k, naive, r, got, want, dumpPolicy(p), dumpPlan(plan, op(r)))
					}
					pairs++
				}
			}
		}
	}
	t.Logf("%d policy/request pairs agree (seed %d)", pairs, *seed)
}

func op(r policy.Request) abi.Opcode { return r.Op }

func dumpPolicy(p *policy.Policy) string {
	s := fmt.Sprintf("default %v\n", p.Default)
	for i, r := range p.Rules {
		s += fmt.Sprintf("rule %d: ops %v action %v\n", i, r.Ops, r.Action)
		for _, c := range r.Conds {
			s += fmt.Sprintf("   %s %v %#x %v\n", c.Field, c.Op, c.Values, c.Nets)
		}
	}
	return s
}

func dumpPlan(p *Plan, op abi.Opcode) string {
	s := ""
	for i, r := range p.Registrations {
		if r.Op != op {
			continue
		}
		s += fmt.Sprintf("registration %d: %s flags %d pdu %d\n", i, r.Comment, r.Flags, r.PDUSize)
		for pc, in := range r.Prog.Instructions() {
			s += fmt.Sprintf("  %3d %v\n", pc, in)
		}
	}
	return s
}
