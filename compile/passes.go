package compile

import (
	"fmt"

	"github.com/ringfence/ringfence/cbpf"
)

// A pass rewrites a program into an equivalent one and reports whether it
// changed anything. Every pass keeps the sprog invariants.
type pass struct {
	name string
	run  func(sprog) (sprog, bool)
}

// passes returns the optimisation passes in the order they run; optimize
// runs the list until no pass changes anything.
func passes() []pass {
	return []pass{
		{"thread", threadJumps},
		{"unreachable", dropUnreachable},
		{"redundant-loads", dropRedundantLoads},
		{"dead-writes", dropDeadWrites},
		{"fold", foldConstant},
	}
}

// optimize runs the passes to a fixed point. Each round makes the program
// no longer and each change strictly improves it (fewer instructions, or
// jumps that go further and skip more), so the loop ends; the bound is a
// safety net that turns a pass bug into an error rather than a hang.
func optimize(p sprog) (sprog, error) {
	for round := 0; ; round++ {
		if round > 4*len(p)+16 {
			return nil, fmt.Errorf("compile: internal error: optimiser did not settle")
		}
		changed := false
		for _, ps := range passes() {
			q, c := ps.run(p)
			if c {
				if err := q.validate(); err != nil {
					return nil, fmt.Errorf("compile: internal error: pass %s: %v", ps.name, err)
				}
				p, changed = q, true
			}
		}
		if !changed {
			return p, nil
		}
	}
}

// aKey describes symbolically what A holds: "w16" after ld [16], then one
// " op:k" per ALU operation with a constant; "" means unknown.
type aKey string

// transfer returns what A holds after in, given it held s before.
func transfer(s aKey, in cbpf.Instruction) aKey {
	switch in.Class() {
	case cbpf.ClassLD:
		switch in.Op & 0xe0 {
		case cbpf.ModeABS:
			return aKey(fmt.Sprintf("w%d", in.K))
		case cbpf.ModeIMM:
			return aKey(fmt.Sprintf("#%d", in.K))
		case cbpf.ModeLEN:
			return aKey(fmt.Sprintf("#%d", 40))
		}
		return ""
	case cbpf.ClassALU:
		if s == "" || in.Op&cbpf.SrcX != 0 {
			return ""
		}
		if in.Op&0xf0 == cbpf.AluNeg {
			return s + " neg"
		}
		return s + aKey(fmt.Sprintf(" %x:%x", in.Op&0xf0, in.K))
	case cbpf.ClassMISC:
		if in.Op&0xf8 == cbpf.MiscTXA {
			return ""
		}
	}
	return s
}

// aStates returns what A holds when each reachable instruction starts,
// meeting the states of all the ways into it ("" where they differ or the
// instruction is unreachable).
func aStates(p sprog) []aKey {
	st := make([]aKey, len(p))
	seen := make([]bool, len(p))
	meet := func(i int, s aKey) {
		if !seen[i] {
			st[i], seen[i] = s, true
		} else if st[i] != s {
			st[i] = ""
		}
	}
	meet(0, "")
	for i, s := range p {
		if !seen[i] {
			continue
		}
		out := transfer(st[i], s.in)
		for _, t := range p.succs(i) {
			meet(t, out)
		}
	}
	return st
}

// loadGroup returns, for the instruction at i if it is "ld [k]", the keys
// after it and after each ALU-with-constant instruction that follows it:
// keys[n] is what A holds after instructions i..i+n.
func loadGroup(p sprog, i int) []aKey {
	in := p[i].in
	if in.Op != cbpf.ClassLD|cbpf.SizeW|cbpf.ModeABS {
		return nil
	}
	keys := []aKey{transfer("", in)}
	for j := i + 1; j < len(p); j++ {
		in := p[j].in
		if in.Class() != cbpf.ClassALU || in.Op&cbpf.SrcX != 0 || in.Op&0xf0 == cbpf.AluDiv {
			break
		}
		keys = append(keys, transfer(keys[len(keys)-1], in))
	}
	return keys
}

// facts is what a path has learned about A from the jumps it took.
type facts struct {
	lo, hi uint32   // A is within lo..hi
	ne     []uint32 // A is none of these
	clear  uint32   // these bits of A are 0
	anyOf  []uint32 // for each, some of its bits in A is 1
}

func newFacts() facts { return facts{lo: 0, hi: 0xffffffff} }

// learn records that the jump in (a comparison with a constant) went the
// way outcome says.
func (f *facts) learn(in cbpf.Instruction, outcome bool) {
	if in.Op&cbpf.SrcX != 0 {
		return
	}
	k := in.K
	switch in.Op & 0xf0 {
	case cbpf.JmpJEQ:
		if outcome {
			f.lo, f.hi = max(f.lo, k), min(f.hi, k)
		} else {
			f.ne = append(f.ne, k)
		}
	case cbpf.JmpJGT:
		if outcome {
			if k == 0xffffffff {
				f.lo, f.hi = 1, 0 // impossible path
			} else {
				f.lo = max(f.lo, k+1)
			}
		} else {
			f.hi = min(f.hi, k)
		}
	case cbpf.JmpJGE:
		if outcome {
			f.lo = max(f.lo, k)
		} else if k == 0 {
			f.lo, f.hi = 1, 0
		} else {
			f.hi = min(f.hi, k-1)
		}
	case cbpf.JmpJSET:
		if outcome {
			f.anyOf = append(f.anyOf, k)
		} else {
			f.clear |= k
		}
	}
}

// decide returns the outcome of the jump in (a comparison of A with a
// constant) if the facts determine it.
func (f *facts) decide(in cbpf.Instruction) (outcome, known bool) {
	if in.Op&cbpf.SrcX != 0 || f.lo > f.hi {
		return false, false
	}
	k := in.K
	switch in.Op & 0xf0 {
	case cbpf.JmpJEQ:
		if f.lo == f.hi {
			return f.lo == k, true
		}
		if k < f.lo || k > f.hi || k&f.clear != 0 {
			return false, true
		}
		for _, x := range f.ne {
			if x == k {
				return false, true
			}
		}
	case cbpf.JmpJGT:
		if f.lo > k {
			return true, true
		}
		if f.hi <= k {
			return false, true
		}
	case cbpf.JmpJGE:
		if f.lo >= k {
			return true, true
		}
		if f.hi < k {
			return false, true
		}
	case cbpf.JmpJSET:
		if f.lo == f.hi {
			return f.lo&k != 0, true
		}
		if k&^f.clear == 0 {
			return false, true
		}
		for _, m := range f.anyOf {
			if m&^k == 0 {
				return true, true
			}
		}
	}
	return false, false
}

// follow returns where a jump from i (to t, having learned f, with A
// holding s) really ends up: through JAs, through conditional jumps the
// facts decide, past loads that would recompute what A already holds, and
// past a load whose only use is a bit test the masked A answers as well
// (see maskedJset). live is liveA of p. Skipping such a load brings a
// different value of A to the bit test (and to where the path lands) than
// the one aStates computed there: follow marks those instructions in
// tainted, and the caller must not trust their A states any more.
func follow(p sprog, t int, f facts, s aKey, live []bool, tainted []bool) int {
	masked := false
	defer func() {
		if masked {
			tainted[t] = true
		}
	}()
	for steps := 0; steps < len(p); steps++ {
		in := p[t].in
		switch {
		case isJA(in):
			t = p[t].t
			continue
		case isCond(in):
			if out, ok := f.decide(in); ok {
				f.learn(in, out)
				if out {
					t = p[t].t
				} else {
					t = p[t].f
				}
				continue
			}
		case s != "":
			if keys := loadGroup(p, t); keys != nil {
				skip := -1
				for n, k := range keys {
					if k == s {
						skip = n
					}
				}
				if skip >= 0 && t+skip+1 < len(p) {
					t += skip + 1
					continue
				}
			}
			if maskedJset(p, t, s, live) {
				t++
				tainted[t], masked = true, true
				continue
			}
		}
		break
	}
	return t
}

// maskedJset reports whether the "ld [w]" at t may be skipped by a way in
// where A holds that word ANDed with a mask m (state s): the next
// instruction is "jset #k" with k within m, which decides the same on the
// masked word, and neither of its ways reads A before loading it again.
func maskedJset(p sprog, t int, s aKey, live []bool) bool {
	var w, m uint32
	if _, err := fmt.Sscanf(string(s), "w%d 50:%x", &w, &m); err != nil || aKey(fmt.Sprintf("w%d 50:%x", w, m)) != s {
		return false
	}
	if p[t].in != cbpf.LoadAbs(w) || t+1 >= len(p) {
		return false
	}
	j := p[t+1]
	return j.in.Op == cbpf.ClassJMP|cbpf.JmpJSET|cbpf.SrcK && j.in.K&^m == 0 && !live[j.t] && !live[j.f]
}

// liveA returns, for each instruction, whether A is read before it is
// written on some path from there.
func liveA(p sprog) []bool {
	live := make([]bool, len(p))
	for i := len(p) - 1; i >= 0; i-- {
		in := p[i].in
		switch {
		case usesA(in):
			live[i] = true
		case pureAWrite(in):
			live[i] = false
		default:
			for _, t := range p.succs(i) {
				live[i] = live[i] || live[t]
			}
		}
	}
	return live
}

// threadJumps makes every jump go straight to where it ends up (see
// follow), turns a JA to a return into that return, a conditional jump
// with both ways equal into a JA, and one whose both ways return the same
// constant into that return.
func threadJumps(p sprog) (sprog, bool) {
	st := aStates(p)
	live := liveA(p)
	tainted := make([]bool, len(p))
	q := append(sprog(nil), p...)
	changed := false
	for i, s := range q {
		if tainted[i] {
			st[i] = ""
		}
		switch {
		case isJA(s.in):
			t := follow(q, s.t, newFacts(), st[i], live, tainted)
			if isRet(q[t].in) {
				q[i] = sins{in: q[t].in}
				changed = true
			} else if t != s.t {
				q[i].t = t
				changed = true
			}
		case isCond(s.in):
			ft, ff := newFacts(), newFacts()
			ft.learn(s.in, true)
			ff.learn(s.in, false)
			t := follow(q, s.t, ft, st[i], live, tainted)
			f := follow(q, s.f, ff, st[i], live, tainted)
			kt, rt := isRetK(q[t].in)
			kf, rf := isRetK(q[f].in)
			switch {
			case rt && rf && kt == kf:
				q[i] = sins{in: cbpf.Ret(kt)}
				changed = true
			case t == f:
				q[i] = sins{in: cbpf.Jump(0), t: t}
				changed = true
			case t != s.t || f != s.f:
				q[i].t, q[i].f = t, f
				changed = true
			}
		}
	}
	return q, changed
}

// dropUnreachable removes unreachable instructions and JAs to the next
// instruction.
func dropUnreachable(p sprog) (sprog, bool) {
	keep := p.reachable()
	changed := false
	for i, s := range p {
		if !keep[i] {
			changed = true
		} else if isJA(s.in) && s.t == i+1 {
			keep[i] = false
			changed = true
		}
	}
	if !changed {
		return p, false
	}
	return compact(p, keep), true
}

// dropRedundantLoads removes "ld [k]" (with the ALU instructions after it)
// when every way into it already has that value in A, and nothing jumps
// into the middle of the group.
func dropRedundantLoads(p sprog) (sprog, bool) {
	st := aStates(p)
	target := make([]bool, len(p))
	for _, s := range p {
		if isJA(s.in) || isCond(s.in) {
			target[s.t], target[s.f] = true, true
		}
	}
	keep := make([]bool, len(p))
	for i := range keep {
		keep[i] = true
	}
	changed := false
	for i := 0; i < len(p); i++ {
		if st[i] == "" {
			continue
		}
		keys := loadGroup(p, i)
		skip := -1
		for n, k := range keys {
			if n > 0 && target[i+n] {
				break
			}
			if k == st[i] {
				skip = n
			}
		}
		if skip < 0 {
			continue
		}
		for j := i; j <= i+skip; j++ {
			keep[j] = false
		}
		changed = true
		i += skip
	}
	if !changed {
		return p, false
	}
	return compact(p, keep), true
}

// usesA reports whether in reads A.
func usesA(in cbpf.Instruction) bool {
	switch in.Class() {
	case cbpf.ClassALU, cbpf.ClassST:
		return true
	case cbpf.ClassJMP:
		return !isJA(in)
	case cbpf.ClassRET:
		return in.Op&0x18 == cbpf.RetA
	case cbpf.ClassMISC:
		return in.Op&0xf8 == cbpf.MiscTAX
	}
	return false
}

// pureAWrite reports whether in only computes A (no other effect, and no
// way to end the program), so it can go when nothing reads A after it.
func pureAWrite(in cbpf.Instruction) bool {
	switch in.Class() {
	case cbpf.ClassLD:
		return true
	case cbpf.ClassALU:
		return in.Op&cbpf.SrcX == 0 || in.Op&0xf0 != cbpf.AluDiv
	case cbpf.ClassMISC:
		return in.Op&0xf8 == cbpf.MiscTXA
	}
	return false
}

// dropDeadWrites removes instructions that only write A when no path
// reads A before writing it again.
func dropDeadWrites(p sprog) (sprog, bool) {
	live := make([]bool, len(p)+1) // live[i]: A is read before written, from i on
	keep := make([]bool, len(p))
	changed := false
	for i := len(p) - 1; i >= 0; i-- {
		in := p[i].in
		out := false
		for _, t := range p.succs(i) {
			out = out || live[t]
		}
		keep[i] = true
		switch {
		case pureAWrite(in) && !out:
			keep[i] = false
			changed = true
			live[i] = false
		case usesA(in):
			live[i] = true
		case pureAWrite(in):
			live[i] = false
		default:
			live[i] = out
		}
	}
	if !changed {
		return p, false
	}
	return compact(p, keep), true
}

// foldConstant replaces a program whose every reachable return is the same
// "ret #k" with that single instruction.
func foldConstant(p sprog) (sprog, bool) {
	if len(p) == 1 {
		return p, false
	}
	r := p.reachable()
	k, first := uint32(0), true
	for i, s := range p {
		if !r[i] || !isRet(s.in) {
			continue
		}
		v, ok := isRetK(s.in)
		if !ok || !first && v != k {
			return p, false
		}
		k, first = v, false
	}
	return sprog{{in: cbpf.Ret(k)}}, true
}
