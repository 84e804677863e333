package compile

import (
	"math"

	"github.com/ringfence/ringfence/cbpf"
)

// seg is one segment of the 32-bit value space of A: the values from lo up
// to the next segment's lo-1 (the last segment up to 2^32-1) lead to leaf.
// A partition is a []seg sorted by lo whose first segment starts at 0.
type seg struct {
	lo   uint32
	leaf int
}

// mergeSegs returns the partition with adjacent segments of the same leaf
// merged.
func mergeSegs(segs []seg) []seg {
	out := make([]seg, 0, len(segs))
	for _, s := range segs {
		if len(out) > 0 && out[len(out)-1].leaf == s.leaf {
			continue
		}
		out = append(out, s)
	}
	return out
}

// tnode is a decision tree over A: a leaf (leaf >= 0) or a comparison of A
// with k by op, going to t when true and f when false.
type tnode struct {
	leaf int
	op   uint16
	k    uint32
	t, f *tnode
}

func tleaf(l int) *tnode { return &tnode{leaf: l} }

func tcmp(op uint16, k uint32, t, f *tnode) *tnode {
	return &tnode{leaf: -1, op: op, k: k, t: t, f: f}
}

// costDepth returns the number of comparisons on the tree's worst path
// when reaching leaf l costs cost[l] more comparisons (missing entries
// cost 0).
func (n *tnode) costDepth(cost []int) int {
	memo := map[*tnode]int{}
	var d func(*tnode) int
	d = func(n *tnode) int {
		if n.leaf >= 0 {
			if n.leaf < len(cost) {
				return cost[n.leaf]
			}
			return 0
		}
		if v, ok := memo[n]; ok {
			return v
		}
		v := 1 + max(d(n.t), d(n.f))
		memo[n] = v
		return v
	}
	return d(n)
}

// size returns the number of comparisons in the tree (shared nodes once).
func (n *tnode) size() int {
	seen := map[*tnode]bool{}
	var s func(*tnode) int
	s = func(n *tnode) int {
		if n.leaf >= 0 || seen[n] {
			return 0
		}
		seen[n] = true
		return 1 + s(n.t) + s(n.f)
	}
	return s(n)
}

// item is a maximal segment of a partition whose leaf is not the
// background leaf: values lo..hi lead to leaf.
type item struct {
	lo, hi uint32
	leaf   int
}

// buildTree returns a decision tree for a partition. Segments other than
// those of one leaf (the background; each leaf is tried) are items; the tree splits the
// items in halves with one "jge" per level, and a single item in known
// bounds costs one comparison (jeq for a point, jgt/jge when it touches a
// bound) or two (an interval strictly inside). A set of 2^n points costs
// n+1 comparisons on every path. When every item is a point and a chain of
// jeq is no deeper than the tree, the chain is used (it is smaller). With
// naive set, the chain is always used, with two comparisons per interval:
// the one-comparison-per-value compile the figures compare against.
func buildTree(segs []seg, naive bool, cost []int) *tnode {
	segs = mergeSegs(segs)
	if len(segs) == 1 {
		return tleaf(segs[0].leaf)
	}
	if naive {
		// One comparison per value (two per interval) against the
		// background that makes the chain shortest: for "in" the members
		// are compared, for "not_in" the excluded values.
		var best *tnode
		for _, s := range segs {
			items, _ := itemsOf(segs, s.leaf)
			if c := chain(items, s.leaf); best == nil || c.size() < best.size() {
				best = c
			}
		}
		return best
	}
	// Try each leaf as the background; keep the shallowest tree, then
	// the smallest, then the first (deterministic).
	var best *tnode
	bestD, bestS := 0, 0
	tried := map[int]bool{}
	for _, s := range segs {
		if tried[s.leaf] {
			continue
		}
		tried[s.leaf] = true
		items, points := itemsOf(segs, s.leaf)
		cands := []*tnode{split(items, s.leaf, 0, 0xffffffff, cost)}
		if points {
			cands = append([]*tnode{chain(items, s.leaf)}, cands...)
		}
		for _, c := range cands {
			d, sz := c.costDepth(cost), c.size()
			if best == nil || d < bestD || d == bestD && sz < bestS {
				best, bestD, bestS = c, d, sz
			}
		}
	}
	return best
}

// itemsOf returns the segments whose leaf is not bg as items, and whether
// they are all single values.
func itemsOf(segs []seg, bg int) (items []item, points bool) {
	points = true
	for i, s := range segs {
		if s.leaf == bg {
			continue
		}
		hi := uint32(0xffffffff)
		if i+1 < len(segs) {
			hi = segs[i+1].lo - 1
		}
		items = append(items, item{s.lo, hi, s.leaf})
		points = points && s.lo == hi
	}
	return items, points
}

// chain tests the items one after the other.
func chain(items []item, bg int) *tnode {
	next := tleaf(bg)
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		switch {
		case it.lo == it.hi:
			next = tcmp(cbpf.JmpJEQ, it.lo, tleaf(it.leaf), next)
		case it.lo == 0:
			next = tcmp(cbpf.JmpJGT, it.hi, next, tleaf(it.leaf))
		case it.hi == 0xffffffff:
			next = tcmp(cbpf.JmpJGE, it.lo, tleaf(it.leaf), next)
		default:
			next = tcmp(cbpf.JmpJGE, it.lo, tcmp(cbpf.JmpJGT, it.hi, next, tleaf(it.leaf)), next)
		}
	}
	return next
}

// split builds a balanced tree for items, all within lo..hi, where every
// value of lo..hi outside the items leads to bg. Items are weighed by
// 2^(comparisons to test the item and then its leaf's code), and the split
// balances the weights, so an item whose leaf costs more sits higher.
func split(items []item, bg int, lo, hi uint32, cost []int) *tnode {
	t := splitOnce(items, bg, lo, hi, cost)
	// A few points are as fast, and smaller, as a chain of jeq.
	if len(items) <= 8 {
		points := true
		for _, it := range items {
			points = points && it.lo == it.hi
		}
		if points {
			c := chain(items, bg)
			if cd, td := c.costDepth(cost), t.costDepth(cost); cd < td || cd == td && c.size() <= t.size() {
				return c
			}
		}
	}
	return t
}

// splitOnce is split with the top-level choice made by halving.
func splitOnce(items []item, bg int, lo, hi uint32, cost []int) *tnode {
	switch len(items) {
	case 0:
		return tleaf(bg)
	case 1:
		it := items[0]
		switch {
		case it.lo <= lo && it.hi >= hi:
			return tleaf(it.leaf)
		case it.lo <= lo:
			return tcmp(cbpf.JmpJGT, it.hi, tleaf(bg), tleaf(it.leaf))
		case it.hi >= hi:
			return tcmp(cbpf.JmpJGE, it.lo, tleaf(it.leaf), tleaf(bg))
		case it.lo == it.hi:
			return tcmp(cbpf.JmpJEQ, it.lo, tleaf(it.leaf), tleaf(bg))
		}
		return tcmp(cbpf.JmpJGE, it.lo, tcmp(cbpf.JmpJGT, it.hi, tleaf(bg), tleaf(it.leaf)), tleaf(bg))
	}
	weight := func(it item) float64 {
		c := 1
		if it.leaf < len(cost) {
			c += cost[it.leaf]
		}
		if it.lo != it.hi {
			c++
		}
		return math.Exp2(float64(c))
	}
	total := 0.0
	for _, it := range items {
		total += weight(it)
	}
	// mid: the first index where the left part's weight reaches half,
	// kept inside 1..len-1; of the two indexes around half, the one that
	// balances better.
	mid, acc := 1, weight(items[0])
	for mid < len(items)-1 && acc+weight(items[mid]) <= total/2 {
		acc += weight(items[mid])
		mid++
	}
	if mid < len(items)-1 && math.Abs(total/2-(acc+weight(items[mid]))) < math.Abs(total/2-acc) {
		mid++
	}
	b := items[mid].lo
	return tcmp(cbpf.JmpJGE, b, split(items[mid:], bg, b, hi, cost), split(items[:mid], bg, lo, b-1, cost))
}
