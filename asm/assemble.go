package asm

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// Object is the result of assembling one source file: the instructions and
// what the file declared about them.
type Object struct {
	// Insns is the program.
	Insns []cbpf.Instruction
	// Pos[i] is the position of the statement that produced Insns[i]. A
	// lowered long jump produces several instructions with the same Pos.
	Pos []Pos
	// View is the context view declared with .view (ViewCommon if none).
	View abi.View
	// ByteOrder is the order declared with .endian (little-endian if
	// none). It decides which words the names of 64-bit halves denote.
	ByteOrder binary.ByteOrder
}

// Assemble translates assembly source to instructions. filename is only
// used in error messages. On failure the error is an ErrorList holding every
// error found, sorted by position, each printed as "file:line:col: message".
//
// Assemble does not check the program against the kernel's rules (use
// cbpf.Check for that): any instruction the syntax can express is
// assembled, so that every program can be written down.
func Assemble(src []byte, filename string) ([]cbpf.Instruction, error) {
	o, err := AssembleFile(src, filename)
	if err != nil {
		return nil, err
	}
	return o.Insns, nil
}

// AssembleFile is Assemble, returning also the source position of each
// instruction and the file's directives.
func AssembleFile(src []byte, filename string) (*Object, error) {
	p := &parser{file: filename, labels: map[string]int{}, labelPos: map[string]Pos{}, bo: binary.LittleEndian}
	lines := strings.Split(string(src), "\n")
	for n, line := range lines {
		p.parseLine(n+1, line)
	}
	if len(p.errs) == 0 {
		p.resolve()
	}
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return nil, p.errs
	}
	return p.layout(), nil
}

// targetKind says what a jump operand names.
type targetKind uint8

const (
	tgtNext  targetKind = iota // the next statement (implicit fall-through)
	tgtLabel                   // a label
	tgtNum                     // a raw offset, +N
)

// target is one jump operand.
type target struct {
	kind  targetKind
	label string
	off   uint32
	pos   Pos
}

// jumpKind says whether a statement's jump fields still need resolving.
type jumpKind uint8

const (
	jumpNone jumpKind = iota
	jumpAlways
	jumpCond
)

// stmt is one assembled statement before layout.
type stmt struct {
	insn cbpf.Instruction
	jump jumpKind
	t, f target
	pos  Pos
}

// parser holds the state of one assembly.
type parser struct {
	file       string
	errs       ErrorList
	stmts      []stmt
	labels     map[string]int // label -> index of the statement it precedes
	labelPos   map[string]Pos
	labelOrder []string
	view       abi.View
	viewSet    bool
	bo         binary.ByteOrder
	boSet      bool

	line int
	toks []token
	i    int
}

// lineErr is an error inside the current line.
type lineErr struct {
	col int
	msg string
}

func (e *lineErr) Error() string { return e.msg }

func (p *parser) errorAt(line, col int, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Col: col, Msg: msg})
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func errAt(t token, format string, args ...any) *lineErr {
	return &lineErr{col: t.col, msg: fmt.Sprintf(format, args...)}
}

// describe names a token for error messages.
func describe(t token) string {
	if t.kind == tEOF {
		return "end of line"
	}
	return strconv.Quote(t.text)
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) expect(s, what string) error {
	t := p.next()
	if t.kind != tPunct || t.text != s {
		return errAt(t, "expected %s, found %s", what, describe(t))
	}
	return nil
}

// isLabelName reports whether s is a valid label: a letter or '_' followed
// by letters, digits and '_'.
func isLabelName(s string) bool {
	if s == "" || !isIdentStart(s[0]) || s[0] == '.' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) || s[i] == '.' {
			return false
		}
	}
	return true
}

// parseLine parses one source line, recording its statement or its error.
func (p *parser) parseLine(lineNo int, text string) {
	if i := strings.IndexByte(text, ';'); i >= 0 {
		text = text[:i]
	}
	p.line = lineNo
	toks, bad, msg := lexLine(text)
	if bad != nil {
		p.errorAt(lineNo, bad.col, msg)
		return
	}
	p.toks, p.i = toks, 0
	if toks[0].kind == tIdent && toks[1].kind == tPunct && toks[1].text == ":" {
		p.defineLabel(toks[0])
		p.i = 2
	}
	if p.peek().kind == tEOF {
		return
	}
	if err := p.statement(); err != nil {
		le := err.(*lineErr)
		p.errorAt(lineNo, le.col, le.msg)
		return
	}
	if t := p.peek(); t.kind != tEOF {
		p.errorAt(lineNo, t.col, fmt.Sprintf("unexpected %s after the statement", describe(t)))
	}
}

func (p *parser) defineLabel(t token) {
	pos := Pos{p.line, t.col}
	if !isLabelName(t.text) {
		p.errorAt(pos.Line, pos.Col, fmt.Sprintf("bad label name %q: use letters, digits and '_', starting with a letter or '_'", t.text))
		return
	}
	if prev, ok := p.labelPos[t.text]; ok {
		p.errorAt(pos.Line, pos.Col, fmt.Sprintf("label %q already defined at line %d", t.text, prev.Line))
		return
	}
	p.labels[t.text] = len(p.stmts)
	p.labelPos[t.text] = pos
	p.labelOrder = append(p.labelOrder, t.text)
}

// aluNames lists the ALU mnemonics that take an operand, indexed by
// operation (code & 0xf0) >> 4; "" where there is none.
func aluNames() [16]string {
	return [16]string{
		cbpf.AluAdd >> 4: "add", cbpf.AluSub >> 4: "sub", cbpf.AluMul >> 4: "mul", cbpf.AluDiv >> 4: "div",
		cbpf.AluOr >> 4: "or", cbpf.AluAnd >> 4: "and", cbpf.AluLsh >> 4: "lsh", cbpf.AluRsh >> 4: "rsh",
		cbpf.AluMod >> 4: "mod", cbpf.AluXor >> 4: "xor",
	}
}

// aluOp returns the operation of an ALU mnemonic that takes an operand.
func aluOp(name string) (uint16, bool) {
	for i, n := range aluNames() {
		if n != "" && n == name {
			return uint16(i) << 4, true
		}
	}
	return 0, false
}

// jumpOp is a conditional jump mnemonic: the kernel operation and whether
// the mnemonic is a pseudo-op that swaps the true and false targets.
type jumpOp struct {
	op   uint16
	swap bool
}

// condJumpOp returns the operation of a conditional jump mnemonic.
func condJumpOp(name string) (jumpOp, bool) {
	switch name {
	case "jeq":
		return jumpOp{cbpf.JmpJEQ, false}, true
	case "jgt":
		return jumpOp{cbpf.JmpJGT, false}, true
	case "jge":
		return jumpOp{cbpf.JmpJGE, false}, true
	case "jset":
		return jumpOp{cbpf.JmpJSET, false}, true
	case "jne":
		return jumpOp{cbpf.JmpJEQ, true}, true
	case "jle":
		return jumpOp{cbpf.JmpJGT, true}, true
	case "jlt":
		return jumpOp{cbpf.JmpJGE, true}, true
	}
	return jumpOp{}, false
}

// mnemonics lists every mnemonic and directive, for suggestions.
func mnemonics() []string {
	return []string{
		"ld", "ldx", "st", "stx", "add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh",
		"neg", "tax", "txa", "ja", "jmp", "jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "ret",
		".insn", ".view", ".endian",
	}
}

// statement parses the statement starting at the current token.
func (p *parser) statement() error {
	t := p.next()
	if t.kind != tIdent {
		return errAt(t, "expected an instruction, a directive or a label, found %s", describe(t))
	}
	pos := Pos{p.line, t.col}
	name := strings.ToLower(t.text)
	if strings.HasPrefix(name, ".") {
		return p.directive(t, name, pos)
	}
	s := stmt{pos: pos}
	switch name {
	case "ld", "ldx":
		cls := uint16(cbpf.ClassLD)
		if name == "ldx" {
			cls = cbpf.ClassLDX
		}
		if err := p.load(t, cls, &s.insn); err != nil {
			return err
		}
	case "st", "stx":
		k, err := p.mem()
		if err != nil {
			return err
		}
		s.insn = cbpf.Store(k)
		if name == "stx" {
			s.insn = cbpf.StoreX(k)
		}
	case "neg":
		s.insn = cbpf.Neg()
	case "tax":
		s.insn = cbpf.TAX()
	case "txa":
		s.insn = cbpf.TXA()
	case "ja", "jmp":
		tg, err := p.target(false)
		if err != nil {
			return err
		}
		s.insn = cbpf.Jump(0)
		s.jump, s.t = jumpAlways, tg
		if tg.kind == tgtNum {
			s.insn.K = tg.off
			s.jump = jumpNone
		}
	case "ret":
		if a := p.peek(); a.kind == tIdent && strings.EqualFold(a.text, "a") {
			p.next()
			s.insn = cbpf.RetAcc()
			break
		}
		k, err := p.imm("ret takes #value or a")
		if err != nil {
			return err
		}
		s.insn = cbpf.Ret(k)
	default:
		if op, ok := aluOp(name); ok {
			src, k, err := p.source(name)
			if err != nil {
				return err
			}
			s.insn = cbpf.Instruction{Op: cbpf.ClassALU | op | src, K: k}
			break
		}
		if jo, ok := condJumpOp(name); ok {
			if err := p.condJump(name, jo, &s); err != nil {
				return err
			}
			break
		}
		switch name {
		case "ldb", "ldh", "ldxb", "ldi", "ldxi", "ldxms":
			return errAt(t, "%s has no mnemonic here: io_uring filters may only load whole 32-bit context words (ld [word]); write .insn CODE, JT, JF, K for other codes", t.text)
		}
		return errAt(t, "unknown instruction %q%s", t.text, abi.DidYouMean(name, mnemonics()))
	}
	p.stmts = append(p.stmts, s)
	return nil
}

// directive parses .insn, .view and .endian.
func (p *parser) directive(t token, name string, pos Pos) error {
	switch name {
	case ".insn":
		var v [4]uint32
		limits := [4]uint32{0xffff, 0xff, 0xff, 0xffffffff}
		what := [4]string{"code", "jt", "jf", "k"}
		for n := range v {
			if n > 0 {
				if err := p.expect(",", "',' between the four fields of .insn CODE, JT, JF, K"); err != nil {
					return err
				}
			}
			start := p.peek()
			x, err := p.expr()
			if err != nil {
				return err
			}
			if x > limits[n] {
				return errAt(start, ".insn %s %#x does not fit (at most %#x)", what[n], x, limits[n])
			}
			v[n] = x
		}
		p.stmts = append(p.stmts, stmt{pos: pos, insn: cbpf.Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: v[3]}})
		return nil
	case ".view", ".endian":
		if len(p.stmts) > 0 {
			return errAt(t, "%s must come before the first instruction", name)
		}
		a := p.next()
		if a.kind != tIdent {
			return errAt(a, "%s needs a name, found %s", name, describe(a))
		}
		if name == ".view" {
			if p.viewSet {
				return errAt(t, ".view given twice")
			}
			v, ok := parseView(a.text)
			if !ok {
				return errAt(a, "unknown view %q: want common, socket, open or connect", a.text)
			}
			p.view, p.viewSet = v, true
			return nil
		}
		if p.boSet {
			return errAt(t, ".endian given twice")
		}
		switch strings.ToLower(a.text) {
		case "little":
			p.bo = binary.LittleEndian
		case "big":
			p.bo = binary.BigEndian
		default:
			return errAt(a, "unknown byte order %q: want little or big", a.text)
		}
		p.boSet = true
		return nil
	}
	return errAt(t, "unknown directive %q%s", t.text, abi.DidYouMean(name, []string{".insn", ".view", ".endian"}))
}

// load parses the operand of ld or ldx into in.
func (p *parser) load(mn token, cls uint16, in *cbpf.Instruction) error {
	t := p.peek()
	switch {
	case t.kind == tPunct && t.text == "#":
		if l := p.toks[p.i+1]; l.kind == tIdent && strings.EqualFold(l.text, "len") && p.toks[p.i+2].kind == tEOF {
			p.i += 2
			*in = cbpf.Instruction{Op: cls | cbpf.SizeW | cbpf.ModeLEN}
			return nil
		}
		k, err := p.imm("")
		if err != nil {
			return err
		}
		*in = cbpf.Instruction{Op: cls | cbpf.ModeIMM, K: k}
	case t.kind == tIdent && strings.EqualFold(t.text, "len"):
		p.next()
		*in = cbpf.Instruction{Op: cls | cbpf.SizeW | cbpf.ModeLEN}
	case t.kind == tIdent && strings.EqualFold(t.text, "m"):
		k, err := p.mem()
		if err != nil {
			return err
		}
		*in = cbpf.Instruction{Op: cls | cbpf.SizeW | cbpf.ModeMEM, K: k}
	case t.kind == tPunct && t.text == "[":
		if cls == cbpf.ClassLDX {
			return errAt(t, "ldx cannot load a context word (classic BPF has no such code); use ld [...] then tax")
		}
		k, err := p.abs()
		if err != nil {
			return err
		}
		*in = cbpf.LoadAbs(k)
	default:
		return errAt(t, "%s takes #value, [context word], M[n] or len; found %s", mn.text, describe(t))
	}
	return nil
}

// mem parses M[n].
func (p *parser) mem() (uint32, error) {
	t := p.next()
	if t.kind != tIdent || !strings.EqualFold(t.text, "m") {
		return 0, errAt(t, "expected a scratch cell M[n], found %s", describe(t))
	}
	if err := p.expect("[", "'[' after M"); err != nil {
		return 0, err
	}
	k, err := p.expr()
	if err != nil {
		return 0, err
	}
	return k, p.expect("]", "']' closing M[n]")
}

// abs parses [word] where word is a context word name or a byte offset.
func (p *parser) abs() (uint32, error) {
	p.next() // [
	t := p.peek()
	var k uint32
	switch t.kind {
	case tIdent:
		p.next()
		w, msg := lookupWord(t.text, p.view, p.bo)
		if msg != "" {
			return 0, errAt(t, "%s", msg)
		}
		k = w.off
	case tNum:
		var err error
		if k, err = p.expr(); err != nil {
			return 0, err
		}
	default:
		return 0, errAt(t, "expected a context word name or byte offset inside [...], found %s", describe(t))
	}
	return k, p.expect("]", "']' closing the context word")
}

// imm parses #expr. what, if not empty, replaces the default message when
// the '#' is missing.
func (p *parser) imm(what string) (uint32, error) {
	t := p.peek()
	if t.kind != tPunct || t.text != "#" {
		if what == "" {
			what = "expected #value"
		}
		return 0, errAt(t, "%s, found %s", what, describe(t))
	}
	p.next()
	return p.expr()
}

// source parses the operand of an ALU or jump instruction: #expr or x.
func (p *parser) source(mn string) (src uint16, k uint32, err error) {
	t := p.peek()
	if t.kind == tIdent && strings.EqualFold(t.text, "x") {
		p.next()
		return cbpf.SrcX, 0, nil
	}
	if t.kind != tPunct || t.text != "#" {
		return 0, 0, errAt(t, "%s takes #value or x, found %s", mn, describe(t))
	}
	k, err = p.imm("")
	return cbpf.SrcK, k, err
}

// target parses a jump target: a label or +N.
func (p *parser) target(cond bool) (target, error) {
	t := p.next()
	pos := Pos{p.line, t.col}
	switch {
	case t.kind == tIdent:
		if !isLabelName(t.text) {
			return target{}, errAt(t, "bad label name %q", t.text)
		}
		return target{kind: tgtLabel, label: t.text, pos: pos}, nil
	case t.kind == tPunct && t.text == "+":
		n := p.next()
		if n.kind != tNum {
			return target{}, errAt(n, "expected a number after '+', found %s", describe(n))
		}
		v, err := parseNumber(n)
		if err != nil {
			return target{}, err
		}
		if cond && v > 0xff {
			return target{}, errAt(n, "offset +%d does not fit in 8 bits; jump to a label and the assembler lowers long jumps", v)
		}
		if v > 0xffffffff {
			return target{}, errAt(n, "offset +%d does not fit in 32 bits", v)
		}
		return target{kind: tgtNum, off: uint32(v), pos: pos}, nil
	case t.kind == tNum:
		return target{}, errAt(t, "a jump target is a label or +N (a number of instructions to skip), found %s", describe(t))
	}
	return target{}, errAt(t, "expected a jump target (a label or +N), found %s", describe(t))
}

// condJump parses "jXX src, Ltrue[, Lfalse]".
func (p *parser) condJump(mn string, jo jumpOp, s *stmt) error {
	src, k, err := p.source(mn)
	if err != nil {
		return err
	}
	if err := p.expect(",", "',' before the jump target"); err != nil {
		return err
	}
	first, err := p.target(true)
	if err != nil {
		return err
	}
	second := target{kind: tgtNext, pos: first.pos}
	if p.isPunct(",") {
		p.next()
		if second, err = p.target(true); err != nil {
			return err
		}
	}
	s.insn = cbpf.Instruction{Op: cbpf.ClassJMP | jo.op | src, K: k}
	s.jump = jumpCond
	s.t, s.f = first, second
	if jo.swap {
		s.t, s.f = second, first
	}
	return nil
}
