package compile

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// iv is the interval lo..hi of field values, inclusive.
type iv struct{ lo, hi uint64 }

// ivset is a union of intervals: sorted, disjoint, never adjacent.
type ivset []iv

// norm sorts and merges overlapping or adjacent intervals.
func (s ivset) norm() ivset {
	s = slices.Clone(s)
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	var out ivset
	for _, x := range s {
		if n := len(out); n > 0 && (x.lo <= out[n-1].hi || out[n-1].hi != ^uint64(0) && x.lo == out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return out
}

// clip keeps the part of s within 0..maxv.
func (s ivset) clip(maxv uint64) ivset {
	var out ivset
	for _, x := range s {
		if x.lo > maxv {
			break
		}
		out = append(out, iv{x.lo, min(x.hi, maxv)})
	}
	return out
}

// complement returns 0..maxv minus s (s within 0..maxv).
func (s ivset) complement(maxv uint64) ivset {
	var out ivset
	next := uint64(0)
	done := false
	for _, x := range s {
		if x.lo > next {
			out = append(out, iv{next, x.lo - 1})
		}
		if x.hi == maxv {
			done = true
			break
		}
		next = x.hi + 1
	}
	if !done {
		out = append(out, iv{next, maxv})
	}
	return out
}

func (s ivset) contains(v uint64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= v })
	return i < len(s) && s[i].lo <= v
}

// points reports whether every interval of s is a single value.
func (s ivset) points() bool {
	for _, x := range s {
		if x.lo != x.hi {
			return false
		}
	}
	return true
}

// intervalsOf returns the values of a numeric field (0..maxv) for which
// an ordering or set condition holds, following policy.Cond.Holds.
func intervalsOf(c policy.Cond, maxv uint64) ivset {
	val := func(i int) uint64 {
		if i < len(c.Values) {
			return c.Values[i]
		}
		return 0
	}
	full := ivset{{0, ^uint64(0)}}
	var s ivset
	switch c.Op {
	case policy.Eq:
		s = ivset{{val(0), val(0)}}
	case policy.Ne:
		s = ivset{{val(0), val(0)}}.complement(^uint64(0))
	case policy.In, policy.NotIn:
		for _, v := range c.Values {
			s = append(s, iv{v, v})
		}
		s = s.norm()
		if c.Op == policy.NotIn {
			s = s.complement(^uint64(0))
		}
	case policy.Lt:
		if val(0) > 0 {
			s = ivset{{0, val(0) - 1}}
		}
	case policy.Le:
		s = ivset{{0, val(0)}}
	case policy.Gt:
		if val(0) < ^uint64(0) {
			s = ivset{{val(0) + 1, ^uint64(0)}}
		}
	case policy.Ge:
		s = ivset{{val(0), ^uint64(0)}}
	case policy.Range, policy.NotRange:
		if val(0) <= val(1) {
			s = ivset{{val(0), val(1)}}
		}
		if c.Op == policy.NotRange {
			s = s.complement(^uint64(0))
		}
	default:
		s = full[:0]
	}
	return s.clip(maxv)
}

// field is how the compiler reaches a numeric policy field in the
// context of one byte order.
type field struct {
	spec  policy.FieldSpec
	maxv  uint64
	wide  bool    // 64 bits: lo and hi words
	lo    operand // the (low) word, with normalisation and sub-word masking
	hi    operand // the high word of a 64-bit field
	shift uint    // a field value v is the A value v<<shift (sub-word fields)
	swap  bool    // 16-bit network-order field on a little-endian machine
}

// isBig reports whether bo stores the most significant byte first.
func isBig(bo binary.ByteOrder) bool {
	var b [2]byte
	bo.PutUint16(b[:], 1)
	return b[0] == 0
}

// lookupField describes a numeric policy field for byte order bo.
func lookupField(name string, bo binary.ByteOrder) (field, error) {
	spec, ok := policy.LookupField(name)
	if !ok {
		return field{}, fmt.Errorf("unknown field %q", name)
	}
	af, ok := abi.LookupField(name)
	if !ok {
		return field{}, fmt.Errorf("field %q has no place in the context", name)
	}
	f := field{spec: spec, maxv: spec.Max()}
	keep := ^spec.Ignore
	switch {
	case spec.Bits == 64:
		w := af.Words(bo)
		f.wide = true
		f.lo = operand{word: w[0], and: uint32(keep)}
		f.hi = operand{word: w[1], and: uint32(keep >> 32)}
	case spec.Bits == 32:
		f.lo = operand{word: uint32(af.Off), and: uint32(keep)}
	case spec.Bits < 32:
		part := af.Parts(bo)
		if af.Network && !isBig(bo) {
			if spec.Bits != 16 || part.Shift != 0 {
				return field{}, fmt.Errorf("field %q: network-order layout not supported", name)
			}
			f.swap = true
			f.lo = operand{word: part.Word, and: 0xffff}
		} else {
			f.shift = part.Shift
			f.lo = operand{word: part.Word, and: (part.Mask & uint32(keep)) << part.Shift}
		}
	default:
		return field{}, fmt.Errorf("field %q is not numeric", name)
	}
	return f, nil
}

// encBits maps bit positions of a (16- or 32-bit, or one half of a 64-bit)
// field value to bit positions in its loaded word.
func (f field) encBits(x uint32) uint32 {
	if f.swap {
		return uint32(bits.ReverseBytes16(uint16(x)))
	}
	return x << f.shift
}

// setPred returns the predicate "field value in s".
func (f field) setPred(s ivset) pred {
	if len(s) == 0 {
		return pConst(false)
	}
	if len(s) == 1 && s[0].lo == 0 && s[0].hi >= f.maxv {
		return pConst(true)
	}
	if f.wide {
		return f.setPred64(s)
	}
	if f.swap {
		// Single ports compare with the loaded word as is (byte-swapped
		// constants); ranges need the host-order value computed.
		if s.points() {
			return pointsPred(f.lo, s, f.encBits)
		}
		if c := s.complement(f.maxv); c.points() {
			return pNot{pointsPred(f.lo, c, f.encBits)}
		}
		return pSwitch{opd: operand{word: f.lo.word, and: 0xffff, swap16: true}, segs: segsOf(s, f.maxv, 0)}
	}
	return pSwitch{opd: f.lo, segs: segsOf(s, f.maxv, f.shift)}
}

// pointsPred is "operand is one of enc(v) for v in s" for a set of points.
func pointsPred(o operand, s ivset, enc func(uint32) uint32) pred {
	vals := make([]uint32, len(s))
	for i, x := range s {
		vals[i] = enc(uint32(x.lo))
	}
	slices.Sort(vals)
	var segs []pseg
	next := uint32(0)
	for _, v := range vals {
		if v > next || len(segs) == 0 && v > 0 {
			segs = append(segs, pseg{next, pConst(false)})
		}
		segs = append(segs, pseg{v, pConst(true)})
		if v == 0xffffffff {
			return pSwitch{opd: o, segs: segs}
		}
		next = v + 1
	}
	segs = append(segs, pseg{next, pConst(false)})
	return pSwitch{opd: o, segs: segs}
}

// segsOf returns the parts of a 32-bit (or narrower) value space for s
// within 0..maxv, with values shifted left by shift.
func segsOf(s ivset, maxv uint64, shift uint) []pseg {
	var segs []pseg
	next := uint64(0)
	add := func(lo uint64, in bool) {
		segs = append(segs, pseg{uint32(lo << shift), pConst(in)})
	}
	for _, x := range s {
		if x.lo > next {
			add(next, false)
		}
		add(x.lo, true)
		if x.hi >= maxv {
			return segs
		}
		next = x.hi + 1
	}
	add(next, false)
	return segs
}

// setPred64 splits a set of 64-bit values over the high word: ranges of
// high words where the set holds for every or no low word become constant
// parts, and each high word where it depends on the low word gets a test
// of the low word. A value below 2^32 costs "hi == 0" and the low test.
func (f field) setPred64(s ivset) pred {
	his := make([]uint64, 0, 2*len(s))
	for _, x := range s {
		his = append(his, x.lo>>32, x.hi>>32)
	}
	slices.Sort(his)
	his = slices.Compact(his)
	var segs []pseg
	next := uint64(0)
	for _, h := range his {
		if h > next {
			segs = append(segs, pseg{uint32(next), pConst(s.contains(next << 32))})
		}
		base := h << 32
		var los ivset
		for _, x := range s {
			if x.hi < base || x.lo > base|0xffffffff {
				continue
			}
			los = append(los, iv{max(x.lo, base) - base, min(x.hi, base|0xffffffff) - base})
		}
		var p pred
		switch {
		case len(los) == 0:
			p = pConst(false)
		case len(los) == 1 && los[0].lo == 0 && los[0].hi == 0xffffffff:
			p = pConst(true)
		default:
			p = pSwitch{opd: f.lo, segs: segsOf(los, 0xffffffff, 0)}
		}
		segs = append(segs, pseg{uint32(h), p})
		if h == 0xffffffff {
			return pSwitch{opd: f.hi, segs: segs}
		}
		next = h + 1
	}
	segs = append(segs, pseg{uint32(next), pConst(s.contains(next << 32))})
	return pSwitch{opd: f.hi, segs: segs}
}

// bitsPred returns the predicate for Masked, HasAll, HasAny and HasNone,
// following policy.Cond.Holds on the normalised value.
func (f field) bitsPred(c policy.Cond) pred {
	val := func(i int) uint64 {
		if i < len(c.Values) {
			return c.Values[i]
		}
		return 0
	}
	usable := f.maxv &^ f.spec.Ignore // bits a normalised value can have
	// halves returns the per-word parts of a 64-bit quantity.
	type half struct {
		x    uint32
		word uint32
	}
	halves := func(x uint64) []half {
		if f.wide {
			return []half{{uint32(x), f.lo.word}, {uint32(x >> 32), f.hi.word}}
		}
		return []half{{uint32(x), f.lo.word}}
	}
	anyOf := func(b uint64) pred {
		var or pOr
		for _, h := range halves(b & usable) {
			if h.x != 0 {
				or = append(or, pBits{word: h.word, bits: f.encBits(h.x)})
			}
		}
		return or
	}
	// maskedEq is "value & m == v" with m within usable and v within m.
	maskedEq := func(m, v uint64) pred {
		var and pAnd
		hv := halves(v)
		for i, h := range halves(m) {
			if h.x == 0 {
				continue
			}
			if bits.OnesCount32(h.x) == 1 {
				if hv[i].x != 0 {
					and = append(and, pBits{word: h.word, bits: f.encBits(h.x)})
				} else {
					and = append(and, pNot{pBits{word: h.word, bits: f.encBits(h.x)}})
				}
				continue
			}
			o := operand{word: h.word, and: f.encBits(h.x)}
			and = append(and, pointsPred(o, ivset{{uint64(hv[i].x), uint64(hv[i].x)}}, f.encBits))
		}
		return and
	}
	switch c.Op {
	case policy.HasAny:
		return anyOf(val(0))
	case policy.HasNone:
		return pNot{anyOf(val(0))}
	case policy.HasAll:
		b := val(0)
		if b&^usable != 0 {
			return pConst(false)
		}
		return maskedEq(b, b)
	case policy.Masked:
		m, v := val(0)&usable, val(1)
		if v&^m != 0 {
			return pConst(false)
		}
		return maskedEq(m, v)
	}
	return pConst(false)
}

// cidrPred returns the predicate for CIDR and NotCIDR on connect.addr,
// following policy.Cond.HoldsAddr: a switch on connect.family, then for
// AF_INET a test of the first address word and for AF_INET6 of the four.
func cidrPred(c policy.Cond, bo binary.ByteOrder) (pred, error) {
	fam, err := lookupField("connect.family", bo)
	if err != nil {
		return nil, err
	}
	addr, ok := abi.LookupField("connect.addr")
	if !ok {
		return nil, fmt.Errorf("no connect.addr in the context")
	}
	var v4, v6 [][]wtest
	for _, p := range c.Nets {
		a := p.Addr()
		var b []byte
		if a.Is4() {
			x := a.As4()
			b = x[:]
		} else {
			x := a.As16()
			b = x[:]
		}
		bitsLeft := p.Bits()
		var ws []wtest
		for i := 0; i < len(b); i += 4 {
			var m [4]byte
			for j := range 4 {
				switch {
				case bitsLeft >= 8:
					m[j] = 0xff
					bitsLeft -= 8
				case bitsLeft > 0:
					m[j] = byte(0xff << (8 - bitsLeft))
					bitsLeft = 0
				}
			}
			mask := bo.Uint32(m[:])
			ws = append(ws, wtest{mask: mask, val: bo.Uint32(b[i:]) & mask})
		}
		if a.Is4() {
			v4 = append(v4, ws)
		} else {
			v6 = append(v6, ws)
		}
	}
	words := addr.Words(bo)
	in := pSwitch{opd: fam.lo, segs: segsOf(ivset{{policy.AFInet, policy.AFInet}, {policy.AFInet6, policy.AFInet6}}, fam.maxv, 0)}
	for i, s := range in.segs {
		switch s.lo {
		case policy.AFInet:
			in.segs[i].p = trie(v4, words[:1], 0)
		case policy.AFInet6:
			in.segs[i].p = trie(v6, words, 0)
		}
	}
	if c.Op == policy.NotCIDR {
		return pNot{in}, nil
	}
	return in, nil
}

// wtest is "loaded word & mask == val"; mask 0 tests nothing.
type wtest struct{ mask, val uint32 }

// trie returns "one of the entries matches", each entry a list of word
// tests on the words at the given offsets (from index wi on). Entries are
// grouped by their test on the current word, so that entries sharing a
// first word test it once: one switch per distinct mask, over the values.
func trie(entries [][]wtest, words []uint32, wi int) pred {
	if len(entries) == 0 {
		return pConst(false)
	}
	if wi == len(words) {
		return pConst(true)
	}
	for _, e := range entries {
		rest := true
		for _, t := range e[wi:] {
			rest = rest && t.mask == 0
		}
		if rest {
			return pConst(true)
		}
	}
	var masks []uint32
	for _, e := range entries {
		masks = append(masks, e[wi].mask)
	}
	slices.Sort(masks)
	masks = slices.Compact(masks)
	var or pOr
	for _, m := range masks {
		var group [][]wtest
		for _, e := range entries {
			if e[wi].mask == m {
				group = append(group, e)
			}
		}
		if m == 0 {
			or = append(or, trie(group, words, wi+1))
			continue
		}
		byVal := map[uint32][][]wtest{}
		var vals []uint32
		for _, e := range group {
			v := e[wi].val
			if _, ok := byVal[v]; !ok {
				vals = append(vals, v)
			}
			byVal[v] = append(byVal[v], e)
		}
		slices.Sort(vals)
		var segs []pseg
		next := uint32(0)
		last := false
		for _, v := range vals {
			if v > next || len(segs) == 0 && v > 0 {
				segs = append(segs, pseg{next, pConst(false)})
			}
			segs = append(segs, pseg{v, trie(byVal[v], words, wi+1)})
			if v == 0xffffffff {
				last = true
				break
			}
			next = v + 1
		}
		if !last {
			segs = append(segs, pseg{next, pConst(false)})
		}
		or = append(or, pSwitch{opd: operand{word: words[wi], and: m}, segs: segs})
	}
	return or
}
