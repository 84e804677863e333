package compile

import (
	"fmt"

	"github.com/ringfence/ringfence/cbpf"
)

// label names a place in a program being built; it is placed once, and
// jumps to it are resolved when the builder finishes.
type label int

// bins is an instruction under construction: jumps name labels.
type bins struct {
	in   cbpf.Instruction
	t, f label
}

// builder assembles an sprog from instructions and labels. Jumps may only
// go forward: a label must be placed after every jump to it.
type builder struct {
	code []bins
	pos  []int // label -> index of the instruction it names, -1 if not placed
	err  error // first contract violation, reported by finish
}

func (b *builder) newLabel() label {
	b.pos = append(b.pos, -1)
	return label(len(b.pos) - 1)
}

// place puts l at the next instruction to be emitted.
func (b *builder) place(l label) {
	if b.pos[l] >= 0 {
		b.fail("label L%d placed twice", l)
		return
	}
	b.pos[l] = len(b.code)
}

func (b *builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("compile: internal error: "+format, args...)
	}
}

// emit appends a non-jump instruction.
func (b *builder) emit(in cbpf.Instruction) { b.code = append(b.code, bins{in: in}) }

// jump appends a conditional jump: compare A with k using op (cbpf.JmpJEQ,
// JmpJGT, JmpJGE, JmpJSET) and go to t if true, f if false.
func (b *builder) jump(op uint16, k uint32, t, f label) {
	b.code = append(b.code, bins{in: cbpf.JumpIf(op, k, 0, 0), t: t, f: f})
}

// ja appends an unconditional jump to l.
func (b *builder) ja(l label) { b.code = append(b.code, bins{in: cbpf.Jump(0), t: l}) }

// ret appends "ret #k".
func (b *builder) ret(k uint32) { b.emit(cbpf.Ret(k)) }

// finish resolves labels into an sprog.
func (b *builder) finish() (sprog, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := make(sprog, len(b.code))
	resolve := func(i int, l label) (int, error) {
		at := b.pos[l]
		if at < 0 {
			return 0, fmt.Errorf("compile: internal error: instruction %d jumps to label L%d, never placed", i, l)
		}
		if at <= i || at >= len(b.code) {
			return 0, fmt.Errorf("compile: internal error: instruction %d jumps to label L%d at %d (jumps go forward, inside the program)", i, l, at)
		}
		return at, nil
	}
	for i, c := range b.code {
		p[i].in = c.in
		var err error
		switch {
		case isJA(c.in):
			p[i].t, err = resolve(i, c.t)
		case isCond(c.in):
			if p[i].t, err = resolve(i, c.t); err == nil {
				p[i].f, err = resolve(i, c.f)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("compile: internal error: %v", err)
	}
	return p, nil
}

// fragment runs render, which must emit code that leaves only through the
// given exits, and verifies that contract: every jump emitted by render
// goes to one of the exits or to a label render placed itself inside its
// own code, render places none of the exits, and its last instruction does
// not fall through (control leaves by a jump or a return). A violation is
// recorded and reported by finish: a renderer bug becomes a compile error,
// never a program that does something else.
func (b *builder) fragment(what string, exits []label, render func()) {
	start := len(b.code)
	nl := label(len(b.pos))
	render()
	end := len(b.code)
	isExit := func(l label) bool {
		for _, e := range exits {
			if e == l {
				return true
			}
		}
		return false
	}
	for _, e := range exits {
		if b.pos[e] >= start {
			b.fail("%s placed its exit L%d", what, e)
		}
	}
	if end == start {
		b.fail("%s emitted no code", what)
		return
	}
	if last := b.code[end-1].in; !isJA(last) && !isCond(last) && !isRet(last) {
		b.fail("%s falls through after its last instruction %v", what, last)
	}
	inside := func(l label) bool {
		at := b.pos[l]
		return l >= nl && at >= start && at < end
	}
	for i := start; i < end; i++ {
		c := b.code[i]
		var targets []label
		switch {
		case isJA(c.in):
			targets = []label{c.t}
		case isCond(c.in):
			targets = []label{c.t, c.f}
		}
		for _, t := range targets {
			if !isExit(t) && !inside(t) {
				b.fail("%s: instruction %d jumps to L%d, which is neither an exit nor inside the fragment", what, i, t)
			}
		}
	}
}
