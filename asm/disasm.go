package asm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// Options control Disassemble and Lines.
type Options struct {
	// ByteOrder is the byte order of the machine the program is for; it
	// decides which word is the low half of a 64-bit field and what
	// port() and ip4() values look like. nil means little-endian.
	ByteOrder binary.ByteOrder
	// View names the words of the per-opcode union (offsets 16 to 39) by
	// the fields of that view. With ViewCommon they are printed as byte
	// offsets, [16].
	View abi.View
	// Numeric prints every constant as a number, never by name.
	Numeric bool
}

// Disassemble returns prog as assembly source that Assemble reads back to
// exactly prog, for every program, valid or not: instructions without a
// mnemonic, and instructions whose unused fields are not zero, are printed
// as ".insn CODE, JT, JF, K". Jump targets inside the program get labels
// named "L" and the target's index; targets outside it are printed as
// "+N". The output starts with the .endian and .view directives when they
// differ from the defaults, and ends with a newline unless prog is empty
// and no directive is needed.
func Disassemble(prog []cbpf.Instruction, opt Options) string {
	opt.View = knownView(opt.View)
	d := newDisasm(prog, opt)
	var b strings.Builder
	if isBig(opt.ByteOrder) {
		b.WriteString(".endian big\n")
	}
	if opt.View != abi.ViewCommon {
		fmt.Fprintf(&b, ".view %s\n", opt.View)
	}
	for pc, line := range d.lines {
		if d.labels[pc] {
			fmt.Fprintf(&b, "L%d:\n", pc)
		}
		b.WriteByte('\t')
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Lines returns the text of each instruction of prog as Disassemble prints
// it, without labels and indentation: Lines(prog, opt)[pc] explains
// instruction pc. Jump targets are named as in Disassemble ("L7").
func Lines(prog []cbpf.Instruction, opt Options) []string {
	opt.View = knownView(opt.View)
	return newDisasm(prog, opt).lines
}

// knownView returns v, or ViewCommon if v is not a view Disassemble knows.
func knownView(v abi.View) abi.View {
	if _, ok := parseView(v.String()); ok {
		return v
	}
	return abi.ViewCommon
}

// disasm holds the state of one disassembly.
type disasm struct {
	prog   []cbpf.Instruction
	opt    Options
	bo     binary.ByteOrder
	labels []bool // labels[pc]: pc is a jump target and gets a label
	lines  []string
	naming bool // name constants (second pass)
	state  aState
}

// aState is what the disassembler knows about register A, for naming
// constants compared with it.
type aState struct {
	known  bool
	w      word // A holds this context word (possibly masked)
	opcode bool // A holds the opcode byte alone
}

func newDisasm(prog []cbpf.Instruction, opt Options) *disasm {
	d := &disasm{prog: prog, opt: opt, bo: orDefault(opt.ByteOrder), labels: make([]bool, len(prog))}
	// The first pass finds the labels; the second names constants, which
	// needs to know where control flow joins.
	d.render()
	d.naming = !opt.Numeric
	d.render()
	return d
}

// render prints every instruction. What is known about A flows forward
// along every edge (jumps only go forward, so one pass in order sees all
// of an instruction's predecessors first); where paths with different
// knowledge join, nothing is known.
func (d *disasm) render() {
	n := len(d.prog)
	d.lines = make([]string, n)
	in := make([]aState, n)
	seen := make([]bool, n)
	merge := func(pc uint64, s aState) {
		if pc >= uint64(n) {
			return
		}
		if !seen[pc] {
			in[pc], seen[pc] = s, true
		} else if in[pc] != s {
			in[pc] = aState{}
		}
	}
	for pc, ins := range d.prog {
		d.state = in[pc]
		s, ok := d.insn(pc, ins)
		next := uint64(pc) + 1
		switch {
		case !ok:
			s = insnDirective(ins)
			merge(next, aState{})
			if ins.IsJump() {
				merge(next+uint64(ins.Jt), aState{})
				merge(next+uint64(ins.Jf), aState{})
				merge(next+uint64(ins.K), aState{})
			}
		case ins.IsReturn():
		case ins.Op == cbpf.ClassJMP|cbpf.JmpJA:
			merge(next+uint64(ins.K), d.state)
		case ins.IsJump():
			merge(next+uint64(ins.Jt), d.state)
			merge(next+uint64(ins.Jf), d.state)
		default:
			merge(next, d.state)
		}
		d.lines[pc] = s
	}
}

// insnDirective formats in as a raw ".insn CODE, JT, JF, K" directive.
func insnDirective(in cbpf.Instruction) string {
	k := "0"
	if in.K != 0 {
		k = fmt.Sprintf("%#x", in.K)
	}
	return fmt.Sprintf(".insn 0x%02x, %d, %d, %s", in.Op, in.Jt, in.Jf, k)
}

// num formats a number: decimal below 256, hexadecimal above.
func num(k uint32) string {
	if k < 256 {
		return fmt.Sprint(k)
	}
	return fmt.Sprintf("%#x", k)
}

// target formats the destination of a jump at pc skipping off
// instructions, and marks the label.
func (d *disasm) target(pc int, off uint32) string {
	dest := uint64(pc) + 1 + uint64(off)
	if dest < uint64(len(d.prog)) {
		d.labels[dest] = true
		return fmt.Sprintf("L%d", dest)
	}
	return fmt.Sprintf("+%d", off)
}

// insn renders one instruction; ok is false when only .insn can express it
// exactly.
func (d *disasm) insn(pc int, in cbpf.Instruction) (string, bool) {
	noJump := in.Jt == 0 && in.Jf == 0
	bare := noJump && in.K == 0
	st := d.state
	d.state = aState{} // most instructions change A; those that do not restore it
	switch in.Op {
	case cbpf.ClassLD | cbpf.ModeIMM:
		return "ld #" + num(in.K), noJump
	case cbpf.ClassLD | cbpf.SizeW | cbpf.ModeABS:
		if !noJump {
			return "", false
		}
		if w, ok := wordAt(in.K, d.opt.View, d.bo); ok {
			d.state = aState{known: true, w: w}
			return "ld [" + w.name + "]", true
		}
		return "ld [" + num(in.K) + "]", true
	case cbpf.ClassLD | cbpf.SizeW | cbpf.ModeMEM:
		return "ld M[" + num(in.K) + "]", noJump
	case cbpf.ClassLD | cbpf.SizeW | cbpf.ModeLEN:
		return "ld len", bare
	}
	d.state = st
	switch in.Op {
	case cbpf.ClassLDX | cbpf.ModeIMM:
		return "ldx #" + num(in.K), noJump
	case cbpf.ClassLDX | cbpf.SizeW | cbpf.ModeMEM:
		return "ldx M[" + num(in.K) + "]", noJump
	case cbpf.ClassLDX | cbpf.SizeW | cbpf.ModeLEN:
		return "ldx len", bare
	case cbpf.ClassST:
		return "st M[" + num(in.K) + "]", noJump
	case cbpf.ClassSTX:
		return "stx M[" + num(in.K) + "]", noJump
	case cbpf.ClassMISC | cbpf.MiscTAX:
		return "tax", bare
	case cbpf.ClassMISC | cbpf.MiscTXA:
		d.state = aState{}
		return "txa", bare
	case cbpf.ClassJMP | cbpf.JmpJA:
		if !noJump {
			return "", false
		}
		return "ja " + d.target(pc, in.K), true
	case cbpf.ClassRET | cbpf.RetK:
		d.state = aState{}
		return "ret #" + num(in.K), noJump
	case cbpf.ClassRET | cbpf.RetA:
		d.state = aState{}
		return "ret a", bare
	case cbpf.ClassALU | cbpf.AluNeg:
		d.state = aState{}
		return "neg", bare
	}
	switch in.Class() {
	case cbpf.ClassALU:
		d.state = aState{}
		name, ok := aluName(in.Op & 0xf0)
		if !ok {
			return "", false
		}
		if in.Op&0x08 == cbpf.SrcX {
			return name + " x", in.Op == cbpf.ClassALU|in.Op&0xf0|cbpf.SrcX && bare
		}
		if in.Op != cbpf.ClassALU|in.Op&0xf0 || !noJump {
			return "", false
		}
		k := num(in.K)
		if in.K >= 10 && (name == "and" || name == "or" || name == "xor") {
			k = fmt.Sprintf("%#x", in.K)
		}
		if d.naming && st.known && (name == "and" || name == "or") {
			if e := flagsExpr(st.w.group, in.K); e != "" {
				k = e
			}
		}
		if name == "and" && st.known {
			switch {
			case bitGroup(st.w.group):
				d.state = st
			case st.w.kind == kindOpWord && !isBig(d.bo) && in.K == 0xff:
				d.state = aState{known: true, opcode: true}
			}
		}
		return name + " #" + k, true
	case cbpf.ClassJMP:
		return d.jump(pc, in, st)
	}
	d.state = aState{}
	return "", false
}

// aluName returns the mnemonic of an ALU operation with an operand.
func aluName(op uint16) (string, bool) {
	n := aluNames()[op>>4&0xf]
	return n, n != ""
}

// jump renders a conditional jump.
func (d *disasm) jump(pc int, in cbpf.Instruction, st aState) (string, bool) {
	var name, inverse string
	switch in.Op & 0xf0 {
	case cbpf.JmpJEQ:
		name, inverse = "jeq", "jne"
	case cbpf.JmpJGT:
		name, inverse = "jgt", "jle"
	case cbpf.JmpJGE:
		name, inverse = "jge", "jlt"
	case cbpf.JmpJSET:
		name = "jset"
	default:
		return "", false
	}
	var src string
	switch in.Op & 0x08 {
	case cbpf.SrcX:
		if in.K != 0 || in.Op != cbpf.ClassJMP|in.Op&0xf0|cbpf.SrcX {
			return "", false
		}
		src = "x"
	default:
		if in.Op != cbpf.ClassJMP|in.Op&0xf0 {
			return "", false
		}
		src = "#" + d.compared(name, in.K, st)
	}
	switch {
	case in.Jf == 0:
		return fmt.Sprintf("%s %s, %s", name, src, d.target(pc, uint32(in.Jt))), true
	case in.Jt == 0 && inverse != "":
		return fmt.Sprintf("%s %s, %s", inverse, src, d.target(pc, uint32(in.Jf))), true
	}
	return fmt.Sprintf("%s %s, %s, %s", name, src, d.target(pc, uint32(in.Jt)), d.target(pc, uint32(in.Jf))), true
}

// compared formats the constant of a jump, by name when A is known to hold
// a field whose values have names.
func (d *disasm) compared(op string, k uint32, st aState) string {
	if !d.naming || !st.known {
		return plain(op, k)
	}
	if st.opcode {
		if info, ok := abi.Opcode(k).Info(); ok && op == "jeq" && k < abi.OpLast {
			return info.KernelName()
		}
		return plain(op, k)
	}
	switch {
	case st.w.kind == kindPort && op == "jeq":
		var b [4]byte
		d.bo.PutUint32(b[:], k)
		if n := binary.BigEndian.Uint16(b[:]); portWord(n, d.bo) == k {
			return fmt.Sprintf("port(%d)", n)
		}
	case st.w.kind == kindAddr && op == "jeq":
		var b [4]byte
		d.bo.PutUint32(b[:], k)
		return "ip4(" + netip.AddrFrom4(b).String() + ")"
	case bitGroup(st.w.group) && (op == "jeq" || op == "jset"):
		if e := flagsExpr(st.w.group, k); e != "" {
			return e
		}
	case st.w.group != "" && op == "jeq":
		if n, ok := abi.ConstName(st.w.group, uint64(k)); ok {
			return n
		}
	}
	return plain(op, k)
}

// plain formats the constant of a jump as a number: in hexadecimal from 10
// up for jset, whose constant is a mask.
func plain(op string, k uint32) string {
	if op == "jset" && k >= 10 {
		return fmt.Sprintf("%#x", k)
	}
	return num(k)
}

// bitGroup reports whether values of group g are sets of bits.
func bitGroup(g abi.Group) bool {
	switch g {
	case abi.GroupSockType, abi.GroupOpen, abi.GroupMode, abi.GroupResolve, abi.GroupSQE:
		return true
	}
	return false
}

// flagsExpr writes v as names of group g joined by '|', or returns "" if
// no name fits. Bits no name covers are appended as a number.
func flagsExpr(g abi.Group, v uint32) string {
	if !bitGroup(g) {
		return ""
	}
	if n, ok := abi.ConstName(g, uint64(v)); ok {
		return n
	}
	var cs []abi.Const
	for _, c := range abi.Consts() {
		if c.Group == g && c.Value != 0 {
			cs = append(cs, c)
		}
	}
	if g == abi.GroupSockType {
		// The type is a number, not bits; only NONBLOCK and CLOEXEC are bits.
		nb, _ := abi.LookupConst("SOCK_NONBLOCK", g)
		ce, _ := abi.LookupConst("SOCK_CLOEXEC", g)
		flags := nb.Value | ce.Value
		base := uint64(v) &^ flags
		parts := []string{}
		if base != 0 {
			n, ok := abi.ConstName(g, base)
			if !ok {
				return ""
			}
			parts = append(parts, n)
		}
		for _, c := range cs {
			if c.Value&flags == c.Value && uint64(v)&c.Value != 0 {
				parts = append(parts, c.Name)
			}
		}
		return strings.Join(parts, "|")
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Value > cs[j].Value })
	rem := uint64(v)
	var picked []abi.Const
	for _, c := range cs {
		if c.Value&rem == c.Value {
			picked = append(picked, c)
			rem &^= c.Value
		}
	}
	if len(picked) == 0 {
		return ""
	}
	sort.SliceStable(picked, func(i, j int) bool { return picked[i].Value < picked[j].Value })
	parts := make([]string, 0, len(picked)+1)
	for _, c := range picked {
		parts = append(parts, c.Name)
	}
	if rem != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rem))
	}
	return strings.Join(parts, "|")
}
