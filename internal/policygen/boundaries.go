package policygen

import (
	"net/netip"
	"slices"

	"github.com/ringfence/ringfence/policy"
)

// PolicyBoundaries returns the Boundaries of every condition of p on
// field, rule by rule.
func PolicyBoundaries(p *policy.Policy, field string) []uint64 {
	var out []uint64
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			if c.Field == field {
				out = append(out, Boundaries(c)...)
			}
		}
	}
	return out
}

// Boundaries returns the values of c's field on both sides of c's edges,
// sorted, without duplicates, within the field's width: each listed value
// and its neighbours (and, for 64-bit fields, the value with its other
// 32-bit half changed); for masked, the value, the value with the mask's
// lowest bit changed, with every bit outside the mask set, and with the
// mask's other bits changed; for bit tests, no bit, the bits, each bit
// alone and the bits without each one, and the bits with the top bit
// added; and for masked and bit tests, each bit of the mask alone. It
// returns nothing for connect.addr (see AddrBoundaries). Values may carry
// the bits normalisation ignores.
func Boundaries(c policy.Cond) []uint64 {
	f, ok := policy.LookupField(c.Field)
	if !ok || f.IsAddr() {
		return nil
	}
	max := f.Max()
	var out []uint64
	add := func(vs ...uint64) {
		for _, v := range vs {
			out = append(out, v&max)
		}
	}
	eachBit := func(bits uint64) {
		for b := uint(0); b < 64; b++ {
			if bits&(1<<b) != 0 {
				add(1<<b, bits&^(1<<b))
			}
		}
	}
	switch c.Op {
	case policy.Masked:
		m, v := c.Values[0], c.Values[1]
		low := m & -m
		add(0, m, v, v^low, v|^m, v^(m&^low), v^m)
		eachBit(m)
	case policy.HasAll, policy.HasAny, policy.HasNone:
		b := c.Values[0]
		add(0, b, b&(b-1), b&-b, b|1<<(f.Bits-1))
		eachBit(b)
	default:
		for _, v := range c.Values {
			if v > 0 {
				add(v - 1)
			}
			add(v)
			if v < max {
				add(v + 1)
			}
			if f.Bits == 64 {
				add(v^1<<32, v&0xffffffff)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AddrBoundaries returns, for each prefix of a connect.addr condition, its
// first and last addresses and the addresses just outside it (where they
// exist), in order, without duplicates.
func AddrBoundaries(c policy.Cond) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, n := range c.Nets {
		first, last := n.Masked().Addr(), LastAddr(n)
		add(first)
		add(last)
		add(first.Prev())
		add(last.Next())
	}
	return out
}

// LastAddr returns the highest address of prefix n.
func LastAddr(n netip.Prefix) netip.Addr {
	b := n.Masked().Addr().AsSlice()
	for i := n.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
