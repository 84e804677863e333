package compile

import (
	"fmt"
	"slices"

	"github.com/ringfence/ringfence/cbpf"
)

// sins is one instruction of a symbolic program: a classic BPF instruction
// whose jump targets are absolute indexes into the program instead of
// offsets. For JA, t is the target; for a conditional jump, t and f are the
// targets when the test is true and false. Jt, Jf and K of a JA are ignored
// until layout fills them in.
type sins struct {
	in   cbpf.Instruction
	t, f int
}

// sprog is a symbolic program. Its invariants (checked by validate): every
// jump target is after the jump and inside the program, and the last
// instruction is a RET, so control never falls off the end. Every
// optimisation pass takes and returns an sprog; layout turns it into real
// instructions.
type sprog []sins

func isJA(in cbpf.Instruction) bool { return in.Op == cbpf.ClassJMP|cbpf.JmpJA }

func isCond(in cbpf.Instruction) bool { return in.IsConditionalJump() }

func isRet(in cbpf.Instruction) bool { return in.IsReturn() }

// isRetK reports whether in is "ret #k" and returns k.
func isRetK(in cbpf.Instruction) (uint32, bool) {
	if in.Op == cbpf.ClassRET|cbpf.RetK {
		return in.K, true
	}
	return 0, false
}

// succs returns the indexes control may go to after instruction i.
func (p sprog) succs(i int) []int {
	in := p[i].in
	switch {
	case isRet(in):
		return nil
	case isJA(in):
		return []int{p[i].t}
	case isCond(in):
		if p[i].t == p[i].f {
			return []int{p[i].t}
		}
		return []int{p[i].t, p[i].f}
	}
	return []int{i + 1}
}

// validate checks the sprog invariants.
func (p sprog) validate() error {
	if len(p) == 0 {
		return fmt.Errorf("empty program")
	}
	for i, s := range p {
		for _, t := range p.succs(i) {
			if t <= i || t >= len(p) {
				return fmt.Errorf("instruction %d (%v) goes to %d, outside %d..%d", i, s.in, t, i+1, len(p)-1)
			}
		}
	}
	if !isRet(p[len(p)-1].in) {
		return fmt.Errorf("last instruction %v is not a return", p[len(p)-1].in)
	}
	return nil
}

// reachable marks the instructions reachable from the first one.
func (p sprog) reachable() []bool {
	r := make([]bool, len(p))
	if len(p) == 0 {
		return r
	}
	r[0] = true
	for i := range p {
		if !r[i] {
			continue
		}
		for _, t := range p.succs(i) {
			r[t] = true
		}
	}
	return r
}

// compact returns p without the instructions where keep is false. A jump to
// a dropped instruction goes to the next kept one instead, so dropping is
// only correct for instructions that are unreachable, or that do nothing
// the code after them needs (a JA to the next instruction, a load whose
// value is already in A, a write to A nobody reads).
func compact(p sprog, keep []bool) sprog {
	newIdx := make([]int, len(p)+1)
	n := 0
	for i := range p {
		newIdx[i] = n
		if keep[i] {
			n++
		}
	}
	newIdx[len(p)] = n
	// A dropped instruction maps to the next kept one: newIdx already holds
	// the count of kept instructions before it, which is that one's index.
	out := make(sprog, 0, n)
	for i, s := range p {
		if !keep[i] {
			continue
		}
		if isJA(s.in) || isCond(s.in) {
			s.t = newIdx[s.t]
			if isCond(s.in) {
				s.f = newIdx[s.f]
			}
		}
		out = append(out, s)
	}
	return out
}

// layout resolves an sprog's absolute targets into the offsets of real
// instructions. A conditional jump whose target is more than 255
// instructions away jumps to a JA (32-bit offset) placed right after it. As
// inserting such trampolines moves code, the set of long jumps is grown
// until nothing changes; each round is linear, and a jump once long stays
// long, so this ends after at most 2n rounds (in practice two or three).
func layout(p sprog) ([]cbpf.Instruction, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	const longT, longF = 1, 2
	long := make([]uint8, len(p))
	pos := make([]int, len(p)+1)
	for {
		at := 0
		for i := range p {
			pos[i] = at
			at++
			if long[i]&longT != 0 {
				at++
			}
			if long[i]&longF != 0 {
				at++
			}
		}
		pos[len(p)] = at
		changed := false
		for i, s := range p {
			if !isCond(s.in) {
				continue
			}
			base := pos[i] + 1
			if long[i]&longT == 0 && pos[s.t]-base > 255 {
				long[i] |= longT
				changed = true
			}
			if long[i]&longF == 0 && pos[s.f]-base > 255 {
				long[i] |= longF
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	out := make([]cbpf.Instruction, 0, pos[len(p)])
	for i, s := range p {
		in := s.in
		switch {
		case isJA(in):
			in.Jt, in.Jf = 0, 0
			in.K = uint32(pos[s.t] - (pos[i] + 1))
			out = append(out, in)
		case isCond(in):
			base := pos[i] + 1
			switch long[i] {
			case 0:
				in.Jt, in.Jf = uint8(pos[s.t]-base), uint8(pos[s.f]-base)
				out = append(out, in)
			case longT:
				in.Jt, in.Jf = 0, uint8(pos[s.f]-base)
				out = append(out, in, cbpf.Jump(uint32(pos[s.t]-(base+1))))
			case longF:
				in.Jt, in.Jf = uint8(pos[s.t]-base), 0
				out = append(out, in, cbpf.Jump(uint32(pos[s.f]-(base+1))))
			default:
				in.Jt, in.Jf = 0, 1
				out = append(out, in,
					cbpf.Jump(uint32(pos[s.t]-(base+1))),
					cbpf.Jump(uint32(pos[s.f]-(base+2))))
			}
		default:
			out = append(out, in)
		}
	}
	return out, nil
}

// unlayout turns real instructions back into an sprog (for tests and for
// passes over hand-written programs). It fails on backward or
// out-of-range jumps.
func unlayout(insns []cbpf.Instruction) (sprog, error) {
	p := make(sprog, len(insns))
	for i, in := range insns {
		p[i].in = in
		switch {
		case isJA(in):
			p[i].t = i + 1 + int(in.K)
		case isCond(in):
			p[i].t = i + 1 + int(in.Jt)
			p[i].f = i + 1 + int(in.Jf)
		}
		if isJA(in) || isCond(in) {
			p[i].in.Jt, p[i].in.Jf = 0, 0
			if isJA(in) {
				p[i].in.K = 0
			}
		}
	}
	return p, p.validate()
}

// islandReach is how far (in symbolic instructions) a conditional jump to
// a return may be before islands gives it a nearer copy; below 255 to
// leave room for the trampolines layout may still add.
const islandReach = 200

// islands gives far conditional jumps to a return a nearer copy of that
// return, so that layout needs no JA trampoline for them: it inserts
// "islands" of return instructions at places nothing falls into (after a
// return, a JA, or a conditional jump that goes elsewhere either way),
// each at the last such place that still serves the earliest far jump
// waiting for one. Large decision trees, whose leaves all jump to the
// same two returns at the end, shrink by about a third this way; a jump
// that still ends up far gets a trampoline from layout as before.
func islands(p sprog) sprog {
	canInsert := func(q int) bool {
		prev := p[q-1]
		switch {
		case isRet(prev.in), isJA(prev.in):
			return true
		case isCond(prev.in):
			return prev.t != q && prev.f != q
		}
		return false
	}
	var points []int
	for q := 1; q < len(p); q++ {
		if canInsert(q) {
			points = append(points, q)
		}
	}
	var pending []far
	at := map[int][]uint32{} // insertion point -> return values of its island
	moved := map[far]int{}   // far jump -> insertion point whose copy it takes
	pi := 0
	for j := range p {
		if pi < len(points) && points[pi] == j {
			pi++
			next := len(p)
			if pi < len(points) {
				next = points[pi]
			}
			if len(pending) > 0 && next-pending[0].j > islandReach {
				var ks []uint32
				for _, f := range pending {
					k := p[f.target(p)].in.K
					if !slices.Contains(ks, k) {
						ks = append(ks, k)
					}
					moved[f] = j
				}
				at[j] = ks
				pending = pending[:0]
			}
		}
		if !isCond(p[j].in) {
			continue
		}
		for slot, t := range []int{p[j].t, p[j].f} {
			if _, ok := isRetK(p[t].in); ok && t-j > islandReach {
				pending = append(pending, far{j, slot})
			}
		}
	}
	if len(at) == 0 {
		return p
	}
	newIdx := make([]int, len(p))
	n := 0
	for q := range p {
		n += len(at[q])
		newIdx[q] = n
		n++
	}
	out := make(sprog, 0, n)
	for q, s := range p {
		for _, k := range at[q] {
			out = append(out, sins{in: cbpf.Ret(k)})
		}
		if isJA(s.in) || isCond(s.in) {
			s.t = newIdx[s.t]
			if isCond(s.in) {
				s.f = newIdx[s.f]
			}
			for slot := range 2 {
				if point, ok := moved[far{q, slot}]; ok {
					old := p[q].t
					if slot == 1 {
						old = p[q].f
					}
					k := p[old].in.K
					idx := newIdx[point] - len(at[point])
					for _, x := range at[point] {
						if x == k {
							break
						}
						idx++
					}
					if slot == 0 {
						s.t = idx
					} else {
						s.f = idx
					}
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// far is a conditional jump (instruction j, slot 0 for its true way, 1 for
// its false way) to a return far away.
type far struct{ j, slot int }

func (f far) target(p sprog) int {
	if f.slot == 0 {
		return p[f.j].t
	}
	return p[f.j].f
}
