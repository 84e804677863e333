package policy

import (
	"math/rand"
	"net/netip"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// Small value domains make random requests hit random conditions often.
var (
	propPrefixes = []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "0.0.0.0/0", "fd00::/8", "::1/128", "::ffff:10.0.0.0/104"}
	propAddrs    = []string{"10.1.2.3", "10.2.0.1", "11.0.0.1", "fd00::1", "::1", "::ffff:10.1.2.3"}
	propGroups   = [][]abi.Opcode{
		{abi.OpSocket},
		{abi.OpOpenat, abi.OpOpenat2},
		{abi.OpConnect},
		{abi.OpNop, abi.OpRead},
	}
)

// randCond returns a random valid condition on a field of op.
func randCond(rng *rand.Rand, op abi.Opcode) Cond {
	var fields []FieldSpec
	for _, f := range Fields() {
		if FieldApplies(op, f.Name) {
			fields = append(fields, f)
		}
	}
	f := fields[rng.Intn(len(fields))]
	if f.IsAddr() {
		c := Cond{Field: f.Name, Op: []CmpOp{CIDR, NotCIDR}[rng.Intn(2)]}
		for n := 1 + rng.Intn(2); n > 0; n-- {
			c.Nets = append(c.Nets, netip.MustParsePrefix(propPrefixes[rng.Intn(len(propPrefixes))]))
		}
		return c
	}
	v := func() uint64 { return uint64(rng.Intn(8)) }
	ops := []CmpOp{Eq, Ne, In, NotIn, Lt, Le, Gt, Ge, Range, NotRange, Masked, HasAll, HasAny, HasNone}
	c := Cond{Field: f.Name, Op: ops[rng.Intn(len(ops))]}
	switch c.Op {
	case In, NotIn:
		for n := 1 + rng.Intn(3); n > 0; n-- {
			c.Values = append(c.Values, v())
		}
	case Range, NotRange, Masked:
		c.Values = []uint64{v(), v()}
	default:
		c.Values = []uint64{v()}
	}
	return c
}

// randPolicy returns a random valid policy over a few opcodes.
func randPolicy(rng *rand.Rand) *Policy {
	p := &Policy{Version: 1, Default: Action(rng.Intn(2))}
	for n := 1 + rng.Intn(6); n > 0; n-- {
		g := propGroups[rng.Intn(len(propGroups))]
		r := Rule{Action: Action(rng.Intn(2)), Ops: []abi.Opcode{g[rng.Intn(len(g))]}}
		if len(g) > 1 && rng.Intn(2) == 0 {
			r.Ops = append([]abi.Opcode(nil), g...)
		}
		for k := rng.Intn(4); k > 0; k-- {
			r.Conds = append(r.Conds, randCond(rng, r.Ops[0]))
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// randRequest returns a random request for op with small field values.
func randRequest(rng *rand.Rand, op abi.Opcode) Request {
	v := func() uint64 { return uint64(rng.Intn(8)) }
	r := Request{Op: op, UserData: v(), SQEFlags: uint8(v())}
	r.Socket = abi.SocketData{Family: uint32(v()), Type: uint32(v()), Protocol: uint32(v())}
	if rng.Intn(3) == 0 {
		r.Socket.Type |= SockTypeIgnore
	}
	r.Open = abi.OpenData{Flags: v() | OpenFlagsIgnore, Mode: v(), Resolve: v()}
	a := netip.MustParseAddr(propAddrs[rng.Intn(len(propAddrs))])
	_ = r.setAddr(a, false)
	r.Connect.Port = uint16(v())
	if rng.Intn(4) == 0 {
		r.Connect.Family = uint32(v()) // AF_UNIX and others
	}
	return r
}

// TestLintSound checks lint's claims against the evaluator on random
// policies: a rule reported as never matching for an opcode never decides a
// request of that opcode, and removing a rule reported as redundant changes
// no decision for its opcodes.
func TestLintSound(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	policies, reqs := 3000, 150
	if testing.Short() {
		policies = 500
	}
	var dead, redundant, checked int
	for i := 0; i < policies; i++ {
		p := randPolicy(rng)
		if err := p.Validate(); err != nil {
			t.Fatalf("generated policy does not validate: %v", err)
		}
		for _, d := range p.Lint() {
			switch d.Code {
			case "never-matches":
				dead++
				for _, op := range d.Ops {
					for k := 0; k < reqs; k++ {
						r := randRequest(rng, op)
						checked++
						if got := p.Decide(r); got.Rule == d.Rule {
							t.Fatalf("lint says %q, but %s is decided by it\npolicy: %+v", d.Message, r, p.Rules)
						}
					}
				}
			case "redundant":
				redundant++
				q := *p
				q.Rules = append(append([]Rule(nil), p.Rules[:d.Rule]...), p.Rules[d.Rule+1:]...)
				for _, op := range d.Ops {
					for k := 0; k < reqs; k++ {
						r := randRequest(rng, op)
						checked++
						if p.Decide(r).Allow != q.Decide(r).Allow {
							t.Fatalf("lint says %q, but removing it changes the decision for %s\npolicy: %+v", d.Message, r, p.Rules)
						}
					}
				}
			}
		}
	}
	// The generator must exercise both claims, or the test proves nothing.
	if dead < 50 || redundant < 50 {
		t.Errorf("too few findings to test: %d never-matches, %d redundant", dead, redundant)
	}
	t.Logf("%d never-matches and %d redundant findings checked with %d requests", dead, redundant, checked)
}

// TestLintFindsShadowing checks that lint does find the common cases on
// random policies: a rule preceded by an unconditional rule for the same
// single opcode is always reported.
func TestLintFindsShadowing(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 500; i++ {
		p := randPolicy(rng)
		op := p.Rules[0].Ops[0]
		first := Rule{Ops: []abi.Opcode{op}, Action: Action(rng.Intn(2))}
		p.Rules = append([]Rule{first}, p.Rules...)
		for j, r := range p.Rules[1:] {
			if !r.Names(op) {
				continue
			}
			found := false
			for _, d := range p.Lint() {
				if d.Code == "never-matches" && d.Rule == j+1 {
					for _, o := range d.Ops {
						if o == op {
							found = true
						}
					}
				}
			}
			if !found {
				t.Fatalf("rule %d after an unconditional rule for %s not reported: %+v", j+2, op, p.Rules)
			}
		}
	}
}
