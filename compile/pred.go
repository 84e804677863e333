package compile

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ringfence/ringfence/cbpf"
)

// A pred is a predicate over the context, the compiler's intermediate form
// between policy conditions and instructions. It is one of:
//
//	pConst   true or false
//	pAnd     all hold (tested in order)
//	pOr      one holds (tested in order)
//	pNot     negation (costs nothing: the exits swap)
//	pSwitch  a partition of the values of one operand, each part with its
//	         own predicate: a decision tree over the operand, then the parts
//	pBits    some bit of a word is set (one jset)
type pred any

type pConst bool

type pAnd []pred

type pOr []pred

type pNot struct{ p pred }

type pSwitch struct {
	opd  operand
	segs []pseg // sorted by lo, first at 0
}

// pseg is one part of a pSwitch: values of the operand from lo up to the
// next part's lo-1 satisfy p.
type pseg struct {
	lo uint32
	p  pred
}

type pBits struct {
	word uint32 // context offset of the word
	bits uint32 // the test holds when word & bits != 0
}

// operand is a 32-bit value a program computes into A: the context word at
// offset word, ANDed with and (0xffffffff: not at all), and for swap16 with
// its two low bytes then swapped (a network-order 16-bit field on a
// little-endian machine, to compare ranges of host-order values).
type operand struct {
	word   uint32
	and    uint32
	swap16 bool
}

// load emits the instructions that compute the operand into A. Loads are
// emitted every time; the optimiser removes the ones whose value is
// already in A.
func (o operand) load(b *builder) {
	b.emit(cbpf.LoadAbs(o.word))
	if o.and != 0xffffffff {
		b.emit(cbpf.ALUK(cbpf.AluAnd, o.and))
	}
	if o.swap16 {
		// With A = b0 | b1<<8: A*0x10001 = b0 | b1<<8 | b0<<16 | b1<<24,
		// shifted right by 8 and masked: b1 | b0<<8.
		b.emit(cbpf.ALUK(cbpf.AluMul, 0x10001))
		b.emit(cbpf.ALUK(cbpf.AluRsh, 8))
		b.emit(cbpf.ALUK(cbpf.AluAnd, 0xffff))
	}
}

// simplify folds constants: pAnd/pOr lose their true/false children (and
// become constant when one decides), nested pAnd/pOr are flattened, double
// negations cancel, switches whose parts are all the same constant become
// that constant, and adjacent parts with the same constant merge.
func simplify(p pred) pred {
	switch p := p.(type) {
	case pAnd:
		var out pAnd
		for _, c := range p {
			c = simplify(c)
			switch c := c.(type) {
			case pConst:
				if !c {
					return pConst(false)
				}
			case pAnd:
				out = append(out, c...)
			default:
				out = append(out, c)
			}
		}
		switch len(out) {
		case 0:
			return pConst(true)
		case 1:
			return out[0]
		}
		sortByLoad(out)
		return out
	case pOr:
		var out pOr
		for _, c := range p {
			c = simplify(c)
			switch c := c.(type) {
			case pConst:
				if c {
					return pConst(true)
				}
			case pOr:
				out = append(out, c...)
			default:
				out = append(out, c)
			}
		}
		switch len(out) {
		case 0:
			return pConst(false)
		case 1:
			return out[0]
		}
		sortByLoad(out)
		return out
	case pNot:
		switch c := simplify(p.p).(type) {
		case pConst:
			return !c
		case pNot:
			return c.p
		default:
			return pNot{c}
		}
	case pSwitch:
		var segs []pseg
		for _, s := range p.segs {
			s.p = simplify(s.p)
			if n := len(segs); n > 0 {
				if a, ok := segs[n-1].p.(pConst); ok {
					if b, ok := s.p.(pConst); ok && a == b {
						continue
					}
				}
			}
			segs = append(segs, s)
		}
		if len(segs) == 1 {
			return segs[0].p
		}
		return pSwitch{opd: p.opd, segs: segs}
	case pBits:
		if p.bits == 0 {
			return pConst(false)
		}
	}
	return p
}

// loadKey orders predicates by the lowest word they load (a field's
// words stay together: a 64-bit field's high-word switch goes with bit
// tests of its low word), then plain loads before loads with ALU
// operations: tests of one field end up next to each other, bit tests on
// the raw word before masked comparisons, so the optimiser can share the
// loads (predicates have no side effects, so the children of pAnd and
// pOr may be tested in any order).
func loadKey(p pred) (word uint32, alu bool) {
	word = 0xffffffff
	var walk func(p pred, top bool)
	walk = func(p pred, top bool) {
		switch p := p.(type) {
		case pBits:
			word = min(word, p.word)
		case pSwitch:
			word = min(word, p.opd.word)
			if top {
				alu = p.opd.and != 0xffffffff || p.opd.swap16
			}
			for _, s := range p.segs {
				walk(s.p, false)
			}
		case pNot:
			walk(p.p, top)
		case pAnd:
			for i, c := range p {
				walk(c, top && i == 0)
			}
		case pOr:
			for i, c := range p {
				walk(c, top && i == 0)
			}
		}
	}
	walk(p, true)
	return word, alu
}

// sortByLoad sorts ps by loadKey, stably.
func sortByLoad(ps []pred) {
	slices.SortStableFunc(ps, func(a, b pred) int {
		wa, aa := loadKey(a)
		wb, ab := loadKey(b)
		switch {
		case wa != wb:
			return cmp.Compare(wa, wb)
		case aa == ab:
			return 0
		case !aa:
			return -1
		}
		return 1
	})
}

// render emits code for p that goes to match when p holds and to mismatch
// when it does not, and to nowhere else (checked by builder.fragment).
func render(b *builder, p pred, match, mismatch label, naive bool) {
	b.fragment(fmt.Sprintf("%T", p), []label{match, mismatch}, func() {
		switch p := p.(type) {
		case pConst:
			if p {
				b.ja(match)
			} else {
				b.ja(mismatch)
			}
		case pAnd:
			if len(p) == 0 {
				b.ja(match)
			}
			for i, c := range p {
				if i == len(p)-1 {
					render(b, c, match, mismatch, naive)
					break
				}
				next := b.newLabel()
				render(b, c, next, mismatch, naive)
				b.place(next)
			}
		case pOr:
			if len(p) == 0 {
				b.ja(mismatch)
			}
			for i, c := range p {
				if i == len(p)-1 {
					render(b, c, match, mismatch, naive)
					break
				}
				next := b.newLabel()
				render(b, c, match, next, naive)
				b.place(next)
			}
		case pNot:
			render(b, p.p, mismatch, match, naive)
		case pBits:
			operand{word: p.word, and: 0xffffffff}.load(b)
			b.jump(cbpf.JmpJSET, p.bits, match, mismatch)
		case pSwitch:
			renderSwitch(b, p, match, mismatch, naive)
		default:
			b.fail("unknown predicate %T", p)
			b.ja(mismatch)
		}
	})
}

// renderSwitch loads the operand, emits the decision tree over its parts,
// then each part that is not a constant.
func renderSwitch(b *builder, p pSwitch, match, mismatch label, naive bool) {
	p.opd.load(b)
	// Leaves 0 and 1 are match and mismatch; part i that needs more code
	// is leaf 2+i.
	leaves := []label{match, mismatch}
	segs := make([]seg, len(p.segs))
	type sub struct {
		l label
		p pred
	}
	var subs []sub
	for i, s := range p.segs {
		switch c := s.p.(type) {
		case pConst:
			if c {
				segs[i] = seg{s.lo, 0}
			} else {
				segs[i] = seg{s.lo, 1}
			}
		default:
			l := b.newLabel()
			leaves = append(leaves, l)
			subs = append(subs, sub{l, s.p})
			segs[i] = seg{s.lo, len(leaves) - 1}
		}
	}
	cost := make([]int, len(leaves))
	for i, s := range subs {
		cost[2+i] = predDepth(s.p, naive)
	}
	used := make([]bool, len(leaves))
	emitTree(b, buildTree(segs, naive, cost), leaves, used)
	for i, s := range subs {
		if !used[2+i] {
			continue // the tree never leads there
		}
		b.place(s.l)
		render(b, s.p, match, mismatch, naive)
	}
}

// predDepth returns the number of comparisons on the worst path of p's
// code (as render would emit it), to weigh decision trees.
func predDepth(p pred, naive bool) int {
	switch p := p.(type) {
	case pBits:
		return 1
	case pNot:
		return predDepth(p.p, naive)
	case pAnd:
		n := 0
		for _, c := range p {
			n += predDepth(c, naive)
		}
		return n
	case pOr:
		n := 0
		for _, c := range p {
			n += predDepth(c, naive)
		}
		return n
	case pSwitch:
		segs := make([]seg, len(p.segs))
		cost := []int{0, 0}
		for i, s := range p.segs {
			switch c := s.p.(type) {
			case pConst:
				if c {
					segs[i] = seg{s.lo, 0}
				} else {
					segs[i] = seg{s.lo, 1}
				}
			default:
				cost = append(cost, predDepth(s.p, naive))
				segs[i] = seg{s.lo, len(cost) - 1}
			}
		}
		return buildTree(segs, naive, cost).costDepth(cost)
	}
	return 0
}

// emitTree emits a decision tree (a DAG: a naive chain shares its tail
// between the two ways of a range test); used records which leaves it
// jumps to. Nodes are emitted in a topological order (each after every
// node that jumps to it), with a node's false way next where possible.
func emitTree(b *builder, n *tnode, leaves []label, used []bool) {
	if n.leaf >= 0 {
		used[n.leaf] = true
		b.ja(leaves[n.leaf])
		return
	}
	var order []*tnode
	seen := map[*tnode]bool{}
	var visit func(*tnode)
	visit = func(n *tnode) {
		if n.leaf >= 0 || seen[n] {
			return
		}
		seen[n] = true
		visit(n.t)
		visit(n.f)
		order = append(order, n)
	}
	visit(n)
	labels := map[*tnode]label{}
	target := func(c *tnode) label {
		if c.leaf >= 0 {
			used[c.leaf] = true
			return leaves[c.leaf]
		}
		if l, ok := labels[c]; ok {
			return l
		}
		l := b.newLabel()
		labels[c] = l
		return l
	}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if i != len(order)-1 {
			b.place(target(n))
		}
		b.jump(n.op, n.k, target(n.t), target(n.f))
	}
}
