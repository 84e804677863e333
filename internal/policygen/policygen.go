// Package policygen makes random valid policies and the values at the edges
// of their conditions. The tests that hold ringfence's compiler, policy
// serializer and kernel filters to the policy's meaning draw their
// policies from it, and "ringfence verify" builds its requests from the
// edges (Boundaries, AddrBoundaries).
//
// Values are biased to where code is most likely wrong: set members and
// their neighbours, range ends, masks and single bits, CIDR edges, the two
// halves of 64-bit values. A Gen is seeded, so a failure replays from its
// seed.
package policygen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Gen is a seeded source of random policies and values. It is not safe
// for concurrent use.
type Gen struct {
	r *rand.Rand
}

// New returns a generator seeded with seed; stream picks one of several
// independent sequences for the same seed.
func New(seed, stream uint64) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(seed, stream))}
}

// Rand returns the generator's source, for callers that draw their own
// values from the same seed.
func (g *Gen) Rand() *rand.Rand { return g.r }

// Pick returns a number in [0, n).
func (g *Gen) Pick(n int) int { return g.r.IntN(n) }

// TestOps are the opcodes random policies name unless told otherwise:
// those with data for filters, and a few without.
func TestOps() []abi.Opcode {
	return []abi.Opcode{abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect, abi.OpNop, abi.OpRead, abi.OpUringCmd}
}

// Options say what policies Policy makes. The zero value makes policies
// over TestOps with conditions on every field.
type Options struct {
	// Ops are the opcodes rules name; nil means TestOps.
	Ops []abi.Opcode
	// Kernel, if not zero, limits conditions to fields that kernel shows
	// filters (CONNECT's from 7.2).
	Kernel abi.Version
	// MaxRules and MaxConds bound the rules per policy and conditions per
	// rule; zero means 8 and 3.
	MaxRules, MaxConds int
	// Operators returns the operators to draw for a field; nil means every
	// operator the field takes.
	Operators func(field string) []policy.CmpOp
	// Value returns an operand for a field (within its width); nil means
	// Gen.Value.
	Value func(f policy.FieldSpec) uint64
	// Prefix returns a prefix for connect.addr; nil means Gen.Prefix.
	Prefix func() netip.Prefix
	// Text adds what a file holds besides decisions: policy and rule
	// names and comments, and a register section.
	Text bool
}

// Value returns a random value for field f, within its width: small
// numbers, single bits, values around 2^32 and 2^64, random words.
func (g *Gen) Value(f policy.FieldSpec) uint64 {
	var v uint64
	switch g.Pick(8) {
	case 0:
		v = uint64(g.Pick(4))
	case 1:
		v = g.r.Uint64()
	case 2:
		v = uint64(g.r.Uint32())
	case 3:
		v = uint64(g.Pick(3))<<32 | uint64(g.Pick(3))
	case 4:
		v = 0xffffffff + uint64(g.Pick(3)) - 1
	case 5:
		v = uint64(1) << g.Pick(64)
	case 6:
		v = ^uint64(0) - uint64(g.Pick(2))
	default:
		v = uint64(g.Pick(64))
	}
	return v & f.Max()
}

// Prefix returns a random masked IPv4 or IPv6 prefix, IPv4-mapped IPv6
// ones included, with lengths at the byte and word edges.
func (g *Gen) Prefix() netip.Prefix {
	if g.Pick(2) == 0 {
		a := netip.AddrFrom4([4]byte{byte(g.Pick(3) * 127), byte(g.Pick(256)), byte(g.Pick(3)), byte(g.Pick(256))})
		return netip.PrefixFrom(a, []int{0, 1, 8, 16, 24, 25, 31, 32}[g.Pick(8)]).Masked()
	}
	var b [16]byte
	switch g.Pick(4) {
	case 0:
		b[15] = 1 // ::1
	case 1:
		b = [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: byte(g.Pick(3))} // ::ffff:127.0.0.x
	default:
		b[0], b[1], b[5], b[15] = []byte{0xfd, 0x20, 0xfe, 0}[g.Pick(4)], byte(g.Pick(256)), byte(g.Pick(3)), byte(g.Pick(3))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), []int{0, 8, 16, 31, 32, 33, 64, 96, 104, 127, 128}[g.Pick(11)]).Masked()
}

// Operators returns every operator field takes.
func Operators(field string) []policy.CmpOp {
	if field == "connect.addr" {
		return []policy.CmpOp{policy.CIDR, policy.NotCIDR}
	}
	var ops []policy.CmpOp
	for _, op := range policy.CmpOps() {
		if op != policy.CIDR && op != policy.NotCIDR {
			ops = append(ops, op)
		}
	}
	return ops
}

// Cond returns a random condition op on field, valid for Validate: sets,
// masks and bit tests never name the bits normalisation ignores (ordering
// operators may). value draws operands (nil: Gen.Value), prefix prefixes
// (nil: Gen.Prefix).
func (g *Gen) Cond(field string, op policy.CmpOp, value func(policy.FieldSpec) uint64, prefix func() netip.Prefix) policy.Cond {
	f, _ := policy.LookupField(field)
	if value == nil {
		value = g.Value
	}
	if prefix == nil {
		prefix = g.Prefix
	}
	val := func() uint64 { return value(f) & f.Max() }
	clean := func(v uint64) uint64 { return v &^ f.Ignore }
	c := policy.Cond{Field: field, Op: op}
	switch op {
	case policy.CIDR, policy.NotCIDR:
		for range 1 + g.Pick(3) {
			c.Nets = append(c.Nets, prefix())
		}
	case policy.In, policy.NotIn:
		n := 1 + g.Pick(6)
		if g.Pick(8) == 0 {
			n = 10 + g.Pick(100)
		}
		base := val()
		for range n {
			v := val()
			if g.Pick(2) == 0 {
				v = (base + uint64(g.Pick(20))) & f.Max()
			}
			c.Values = append(c.Values, clean(v))
		}
	case policy.Range, policy.NotRange:
		a, b := val(), val()
		if a > b && g.Pick(6) != 0 {
			a, b = b, a
		}
		c.Values = []uint64{a, b}
	case policy.Masked:
		// Two values OR-ed make a denser mask than one.
		m1, m2 := val(), val()
		m := clean(m1 | m2)
		if m == 0 {
			m = clean(3)
		}
		v := val() & m
		c.Values = []uint64{m, v}
	case policy.HasAll, policy.HasAny, policy.HasNone:
		b := clean(val())
		if b == 0 || g.Pick(3) == 0 {
			b = clean(uint64(1) << g.Pick(f.Bits))
		}
		c.Values = []uint64{b}
	case policy.Eq, policy.Ne:
		c.Values = []uint64{clean(val())}
	default:
		c.Values = []uint64{val()}
	}
	return c
}

// Policy returns a random valid policy. Three rules in four name one
// opcode (or OPENAT and OPENAT2) and test its data as well as the common
// fields; the others name several opcodes and test what they all have.
// A rule has each operator at most once per field, as a file writes it,
// and its conditions on one field come together.
func (g *Gen) Policy(o Options) *policy.Policy {
	ops := o.Ops
	if ops == nil {
		ops = TestOps()
	}
	maxRules, maxConds := o.MaxRules, o.MaxConds
	if maxRules == 0 {
		maxRules = 8
	}
	if maxConds == 0 {
		maxConds = 3
	}
	operators := o.Operators
	if operators == nil {
		operators = Operators
	}
	p := &policy.Policy{Version: policy.Version, Default: policy.Action(g.Pick(2)), File: "random.yaml"}
	if o.Text {
		g.text(p)
	}
	for range 1 + g.Pick(maxRules) {
		r := policy.Rule{Action: policy.Action(g.Pick(2))}
		first := ops[g.Pick(len(ops))]
		switch {
		case g.Pick(4) == 0:
			seen := map[abi.Opcode]bool{}
			for range 1 + g.Pick(3) {
				if op := ops[g.Pick(len(ops))]; !seen[op] {
					seen[op] = true
					r.Ops = append(r.Ops, op)
				}
			}
		case (first == abi.OpOpenat || first == abi.OpOpenat2) && g.Pick(2) == 0 && has(ops, abi.OpOpenat) && has(ops, abi.OpOpenat2):
			r.Ops = []abi.Opcode{abi.OpOpenat, abi.OpOpenat2}
		default:
			r.Ops = []abi.Opcode{first}
		}
		fields := g.fields(r.Ops, o.Kernel)
		byField := map[string][]policy.Cond{}
		var order []string
		for range g.Pick(maxConds + 1) {
			field := fields[g.Pick(len(fields))]
			cands := operators(field)
			if len(cands) == 0 {
				continue
			}
			op := cands[g.Pick(len(cands))]
			dup := false
			for _, c := range byField[field] {
				dup = dup || c.Op == op
			}
			if dup {
				continue
			}
			if _, ok := byField[field]; !ok {
				order = append(order, field)
			}
			byField[field] = append(byField[field], g.Cond(field, op, o.Value, o.Prefix))
		}
		for _, field := range order {
			r.Conds = append(r.Conds, byField[field]...)
		}
		if o.Text {
			if g.Pick(2) == 0 {
				r.Name = g.word()
			}
			if g.Pick(3) == 0 {
				r.Comment = g.sentence()
			}
		}
		p.Rules = append(p.Rules, r)
	}
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("policygen made an invalid policy: %v", err))
	}
	return p
}

// fields returns the fields every opcode of ops has and kernel k (if not
// zero) shows filters.
func (g *Gen) fields(ops []abi.Opcode, k abi.Version) []string {
	var out []string
	for _, f := range policy.Fields() {
		all := true
		for _, op := range ops {
			all = all && policy.FieldApplies(op, f.Name)
			if info, ok := op.Info(); ok && f.View != abi.ViewCommon && k != (abi.Version{}) && !info.HasData(k) {
				all = false
			}
		}
		if all {
			out = append(out, f.Name)
		}
	}
	return out
}

// text gives p a name, a comment and a register section, each now and
// then.
func (g *Gen) text(p *policy.Policy) {
	if g.Pick(2) == 0 {
		p.Name = g.word()
	}
	if g.Pick(2) == 0 {
		p.Comment = g.sentence()
	}
	if g.Pick(2) == 0 {
		reg := &policy.Register{}
		seen := map[abi.RegisterOp]bool{}
		for range g.Pick(5) {
			op := abi.RegisterOp(g.Pick(abi.RegisterOpLast))
			if !seen[op] {
				seen[op] = true
				reg.Allow = append(reg.Allow, op)
			}
		}
		if g.Pick(3) == 0 {
			reg.Comment = g.sentence()
		}
		p.Register = reg
	}
}

// words returns what free text is made of, including what YAML would read
// as something other than a string if it were written bare.
func words() []string {
	return []string{"web", "io", "null", "true", "no", "1", "0x10", "- x", "a: b", "#c", "'q'", `"dq"`, "{x}", "[y]",
		"*z", "&w", "é", "tab\there", "ü ß", "~", "@at", "%pc", "`bt`", "line\nbreak", " lead", "trail ", ""}
}

// word returns a short free-text string (never empty: an empty name is no
// name).
func (g *Gen) word() string {
	w := words()
	for {
		if s := w[g.Pick(len(w))]; s != "" {
			return s
		}
	}
}

// sentence returns free text of a few words.
func (g *Gen) sentence() string {
	s := g.word()
	for range g.Pick(4) {
		s += " " + g.word()
	}
	return s
}

// has reports whether ops holds op.
func has(ops []abi.Opcode, op abi.Opcode) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}
