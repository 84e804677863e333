package asm

import (
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// resolve checks every label reference.
func (p *parser) resolve() {
	for i, s := range p.stmts {
		for _, tg := range []target{s.t, s.f} {
			if tg.kind != tgtLabel || s.jump == jumpNone {
				continue
			}
			idx, ok := p.labels[tg.label]
			if !ok {
				p.errorAt(tg.pos.Line, tg.pos.Col, fmt.Sprintf("undefined label %q%s", tg.label, abi.DidYouMean(tg.label, p.labelOrder)))
				continue
			}
			if idx <= i {
				lp := p.labelPos[tg.label]
				p.errorAt(tg.pos.Line, tg.pos.Col, fmt.Sprintf("label %q (line %d) is not after this jump: classic BPF jumps only forward", tg.label, lp.Line))
			}
		}
	}
}

// layout assigns addresses, lowering conditional jumps whose label targets
// are more than 255 instructions away into a jump over unconditional JAs
// (which have 32-bit offsets). It starts from the smallest layout and only
// grows jumps until nothing changes, so the result is the least fixed
// point: deterministic and no larger than needed.
func (p *parser) layout() *Object {
	n := len(p.stmts)
	farT := make([]bool, n)
	farF := make([]bool, n)
	addr := make([]int, n+1)
	sameFar := func(i int) bool {
		s := p.stmts[i]
		return farT[i] && farF[i] && s.t.kind == tgtLabel && s.f.kind == tgtLabel && s.t.label == s.f.label
	}
	size := func(i int) int {
		if sameFar(i) {
			return 2
		}
		sz := 1
		if farT[i] {
			sz++
		}
		if farF[i] {
			sz++
		}
		return sz
	}
	dest := func(i int, tg target) int {
		if tg.kind == tgtNext {
			return addr[i+1]
		}
		return addr[p.labels[tg.label]]
	}
	for {
		a := 0
		for i := range p.stmts {
			addr[i] = a
			a += size(i)
		}
		addr[n] = a
		changed := false
		for i, s := range p.stmts {
			if s.jump != jumpCond {
				continue
			}
			base := addr[i] + 1
			if s.t.kind == tgtLabel && !farT[i] && dest(i, s.t)-base > 0xff {
				farT[i], changed = true, true
			}
			if s.f.kind == tgtLabel && !farF[i] && dest(i, s.f)-base > 0xff {
				farF[i], changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	o := &Object{View: p.view, ByteOrder: p.bo, Insns: make([]cbpf.Instruction, 0, addr[n]), Pos: make([]Pos, 0, addr[n])}
	emit := func(in cbpf.Instruction, pos Pos) {
		o.Insns = append(o.Insns, in)
		o.Pos = append(o.Pos, pos)
	}
	for i, s := range p.stmts {
		base := addr[i] + 1
		in := s.insn
		switch s.jump {
		case jumpNone:
			emit(in, s.pos)
		case jumpAlways:
			in.K = uint32(dest(i, s.t) - base)
			emit(in, s.pos)
		case jumpCond:
			var jas []int // destinations of the long-jump JAs after the jump
			field := func(tg target, far bool) uint8 {
				switch {
				case tg.kind == tgtNum:
					return uint8(tg.off)
				case far:
					jas = append(jas, dest(i, tg))
					return uint8(len(jas) - 1)
				}
				return uint8(dest(i, tg) - base)
			}
			if sameFar(i) {
				in.Jt, in.Jf = 0, 0
				jas = append(jas, dest(i, s.t))
			} else {
				in.Jt = field(s.t, farT[i])
				in.Jf = field(s.f, farF[i])
			}
			emit(in, s.pos)
			for j, d := range jas {
				emit(cbpf.Jump(uint32(d-(base+j+1))), s.pos)
			}
		}
	}
	return o
}
