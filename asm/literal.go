package asm

import (
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/cbpf"
)

// litTok is a token of a C or Go program literal.
type litTok struct {
	text      string // "" at the end of input
	line, col int
}

// litLexer tokenizes C and Go literals: identifiers (with dots), numbers,
// and single punctuation characters; comments are skipped.
type litLexer struct {
	src       string
	i         int
	line, col int
}

func (l *litLexer) next() (litTok, error) {
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == '\n':
			l.i++
			l.line++
			l.col = 1
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			l.i++
			l.col++
		case strings.HasPrefix(l.src[l.i:], "//"):
			for l.i < len(l.src) && l.src[l.i] != '\n' {
				l.i++
			}
		case strings.HasPrefix(l.src[l.i:], "/*"):
			end := strings.Index(l.src[l.i+2:], "*/")
			if end < 0 {
				return litTok{}, &Error{Line: l.line, Col: l.col, Msg: "unterminated /* comment"}
			}
			for _, r := range l.src[l.i : l.i+2+end+2] {
				if r == '\n' {
					l.line++
					l.col = 1
				} else {
					l.col++
				}
			}
			l.i += 2 + end + 2
		default:
			t := litTok{line: l.line, col: l.col}
			j := l.i + 1
			if isIdentChar(c) {
				for j < len(l.src) && isIdentChar(l.src[j]) {
					j++
				}
			}
			t.text = l.src[l.i:j]
			l.col += j - l.i
			l.i = j
			return t, nil
		}
	}
	return litTok{line: l.line, col: l.col}, nil
}

// litErr builds a located error.
func litErr(t litTok, format string, args ...any) error {
	return &Error{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func describeLit(t litTok) string {
	if t.text == "" {
		return "end of input"
	}
	return strconv.Quote(t.text)
}

// unmarshalLiteral reads a C array of struct sock_filter or a Go
// []cbpf.Instruction literal. Everything before the first '{' is ignored
// (a declaration such as "struct sock_filter prog[] ="). Elements are
// "{code, jt, jf, k}", or keyed "{Op: c, Jt: t, Jf: f, K: k}" (Go, missing
// keys are zero) or "{.code = c, .jt = t, .jf = f, .k = k}" (C), optionally
// preceded by a type name; numbers are C/Go integer literals.
func unmarshalLiteral(data []byte) ([]cbpf.Instruction, error) {
	src := string(data)
	// Skip the declaration before the first '{' outside comments.
	l := &litLexer{src: src, line: 1, col: 1}
	var t litTok
	var err error
	for {
		if t, err = l.next(); err != nil {
			return nil, err
		}
		if t.text == "" {
			return nil, litErr(t, "no '{' found: expected a C or Go array of instructions")
		}
		if t.text == "{" {
			break
		}
	}
	// Is this '{' the array's or the first element's?
	save := *l
	peek, err := l.next()
	if err != nil {
		return nil, err
	}
	*l = save
	_, key := map[string]bool{"Op": true, "Jt": true, "Jf": true, "K": true}[peek.text]
	bare := peek.text != "{" && peek.text != "}" && (!isTypeName(peek.text) || key)
	var prog []cbpf.Instruction
	if bare {
		// A single element without the array's braces.
		in, err := literalElem(l, t)
		if err != nil {
			return nil, err
		}
		prog = append(prog, in)
		return prog, literalEnd(l)
	}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.text == "}" {
			break
		}
		if t.text == "BPF_STMT" || t.text == "BPF_JUMP" {
			in, err := literalMacro(l, t)
			if err != nil {
				return nil, err
			}
			prog = append(prog, in)
			sep, err := l.next()
			if err != nil {
				return nil, err
			}
			if sep.text == "}" {
				break
			}
			if sep.text != "," {
				return nil, litErr(sep, "expected ',' or '}' after instruction %d, found %s", len(prog)-1, describeLit(sep))
			}
			continue
		}
		if isTypeName(t.text) {
			// A type before the element: cbpf.Instruction{...}.
			save := *l
			brace, err := l.next()
			if err != nil {
				return nil, err
			}
			if brace.text == "{" {
				t = brace
			} else {
				*l = save
			}
		}
		if t.text != "{" {
			hint := ""
			if strings.HasPrefix(t.text, "BPF_") {
				hint = " (write {code, jt, jf, k}, BPF_STMT(code, k) or BPF_JUMP(code, k, jt, jf))"
			}
			return nil, litErr(t, "expected '{' starting instruction %d, found %s%s", len(prog), describeLit(t), hint)
		}
		in, err := literalElem(l, t)
		if err != nil {
			return nil, err
		}
		prog = append(prog, in)
		sep, err := l.next()
		if err != nil {
			return nil, err
		}
		if sep.text == "}" {
			break
		}
		if sep.text != "," {
			return nil, litErr(sep, "expected ',' or '}' after instruction %d, found %s", len(prog)-1, describeLit(sep))
		}
	}
	return prog, literalEnd(l)
}

// isTypeName reports whether s can be the type before an element's '{'.
func isTypeName(s string) bool {
	return s != "" && isIdentStart(s[0]) && s[0] != '.'
}

// literalEnd accepts an optional ';' and then the end of input.
func literalEnd(l *litLexer) error {
	t, err := l.next()
	if err != nil {
		return err
	}
	if t.text == ";" {
		if t, err = l.next(); err != nil {
			return err
		}
	}
	if t.text != "" {
		return litErr(t, "unexpected %s after the program", describeLit(t))
	}
	return nil
}

// literalElem reads one element after its opening '{', through its '}'.
func literalElem(l *litLexer, open litTok) (cbpf.Instruction, error) {
	var v [4]uint64
	limits := [4]uint64{0xffff, 0xff, 0xff, 0xffffffff}
	names := [4]string{"code", "jt", "jf", "k"}
	keys := map[string]int{"Op": 0, "Jt": 1, "Jf": 2, "K": 3, ".code": 0, ".jt": 1, ".jf": 2, ".k": 3}
	keyed, positional := false, 0
	for n := 0; ; n++ {
		t, err := l.next()
		if err != nil {
			return cbpf.Instruction{}, err
		}
		if t.text == "}" && (n > 0 || keyed) {
			break
		}
		if t.text == "}" && n == 0 {
			keyed = true // {} is the zero instruction in Go
			break
		}
		idx := positional
		if f, ok := keys[t.text]; ok && !(positional > 0) {
			keyed = true
			sep, err := l.next()
			if err != nil {
				return cbpf.Instruction{}, err
			}
			if sep.text != ":" && sep.text != "=" {
				return cbpf.Instruction{}, litErr(sep, "expected ':' or '=' after %s, found %s", t.text, describeLit(sep))
			}
			idx = f
			if t, err = l.next(); err != nil {
				return cbpf.Instruction{}, err
			}
		} else if keyed {
			return cbpf.Instruction{}, litErr(t, "expected a field name (Op, Jt, Jf, K or .code, .jt, .jf, .k), found %s", describeLit(t))
		} else {
			if positional == 4 {
				return cbpf.Instruction{}, litErr(t, "an instruction has four fields {code, jt, jf, k}; found a fifth")
			}
			positional++
		}
		x, err := litNumber(t)
		if err != nil {
			return cbpf.Instruction{}, err
		}
		if x > limits[idx] {
			return cbpf.Instruction{}, litErr(t, "%s %s does not fit (at most %#x)", names[idx], t.text, limits[idx])
		}
		v[idx] = x
		sep, err := l.next()
		if err != nil {
			return cbpf.Instruction{}, err
		}
		if sep.text == "}" {
			break
		}
		if sep.text != "," {
			return cbpf.Instruction{}, litErr(sep, "expected ',' or '}' in an instruction, found %s", describeLit(sep))
		}
	}
	if !keyed && positional != 4 {
		return cbpf.Instruction{}, litErr(open, "an instruction has four fields {code, jt, jf, k}; found %d", positional)
	}
	return cbpf.Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}, nil
}

// litNumber parses a C or Go integer literal: decimal, 0x hex, 0b binary,
// 0o or leading-0 octal, with C's u/U/l/L suffixes allowed.
func litNumber(t litTok) (uint64, error) {
	s := strings.TrimRight(t.text, "uUlL")
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, litErr(t, "expected a number, found %s", describeLit(t))
	}
	return v, nil
}

// bpfNames returns the values of the kernel's classic BPF macros
// (linux/bpf_common.h, linux/filter.h) that C programs build codes from.
func bpfNames() map[string]uint64 {
	return map[string]uint64{
		"BPF_LD": 0x00, "BPF_LDX": 0x01, "BPF_ST": 0x02, "BPF_STX": 0x03,
		"BPF_ALU": 0x04, "BPF_JMP": 0x05, "BPF_RET": 0x06, "BPF_MISC": 0x07,
		"BPF_W": 0x00, "BPF_H": 0x08, "BPF_B": 0x10,
		"BPF_IMM": 0x00, "BPF_ABS": 0x20, "BPF_IND": 0x40, "BPF_MEM": 0x60, "BPF_LEN": 0x80, "BPF_MSH": 0xa0,
		"BPF_ADD": 0x00, "BPF_SUB": 0x10, "BPF_MUL": 0x20, "BPF_DIV": 0x30, "BPF_OR": 0x40, "BPF_AND": 0x50,
		"BPF_LSH": 0x60, "BPF_RSH": 0x70, "BPF_NEG": 0x80, "BPF_MOD": 0x90, "BPF_XOR": 0xa0,
		"BPF_JA": 0x00, "BPF_JEQ": 0x10, "BPF_JGT": 0x20, "BPF_JGE": 0x30, "BPF_JSET": 0x40,
		"BPF_K": 0x00, "BPF_X": 0x08, "BPF_A": 0x10, "BPF_TAX": 0x00, "BPF_TXA": 0x80,
	}
}

// literalMacro reads BPF_STMT(code, k) or BPF_JUMP(code, k, jt, jf) after
// the macro's name.
func literalMacro(l *litLexer, name litTok) (cbpf.Instruction, error) {
	t, err := l.next()
	if err != nil {
		return cbpf.Instruction{}, err
	}
	if t.text != "(" {
		return cbpf.Instruction{}, litErr(t, "expected '(' after %s, found %s", name.text, describeLit(t))
	}
	n := 2
	if name.text == "BPF_JUMP" {
		n = 4
	}
	// Macro argument order: code, k, jt, jf.
	var v [4]uint64
	limits := [4]uint64{0xffff, 0xffffffff, 0xff, 0xff}
	what := [4]string{"code", "k", "jt", "jf"}
	for i := 0; i < n; i++ {
		if i > 0 {
			if t, err = l.next(); err != nil {
				return cbpf.Instruction{}, err
			}
			if t.text != "," {
				return cbpf.Instruction{}, litErr(t, "%s takes %d arguments; expected ',', found %s", name.text, n, describeLit(t))
			}
		}
		start := *l
		first, _ := start.next()
		x, err := cExpr(l)
		if err != nil {
			return cbpf.Instruction{}, err
		}
		if x > limits[i] {
			return cbpf.Instruction{}, litErr(first, "%s %#x does not fit (at most %#x)", what[i], x, limits[i])
		}
		v[i] = x
	}
	if t, err = l.next(); err != nil {
		return cbpf.Instruction{}, err
	}
	if t.text != ")" {
		return cbpf.Instruction{}, litErr(t, "%s takes %d arguments; expected ')', found %s", name.text, n, describeLit(t))
	}
	return cbpf.Instruction{Op: uint16(v[0]), K: uint32(v[1]), Jt: uint8(v[2]), Jf: uint8(v[3])}, nil
}

// cExpr evaluates a C constant expression of the kind filter code uses:
// numbers, BPF_* names and offsetof(struct io_uring_bpf_ctx, field)
// joined by '|' or '+', with parentheses. Mixing '|' and '+' needs
// parentheses, so C's precedence never matters. Sums wrap at 64 bits; the
// caller checks the range.
func cExpr(l *litLexer) (uint64, error) {
	x, err := cTerm(l)
	if err != nil {
		return 0, err
	}
	seen := ""
	for {
		save := *l
		op, err := l.next()
		if err != nil {
			return 0, err
		}
		if op.text != "|" && op.text != "+" {
			*l = save
			return x, nil
		}
		if seen != "" && seen != op.text {
			return 0, litErr(op, "mixing '|' and '+' needs parentheses")
		}
		seen = op.text
		y, err := cTerm(l)
		if err != nil {
			return 0, err
		}
		if op.text == "|" {
			x |= y
		} else {
			x += y
		}
	}
}

// cTerm evaluates one term of cExpr.
func cTerm(l *litLexer) (uint64, error) {
	t, err := l.next()
	if err != nil {
		return 0, err
	}
	switch {
	case t.text == "(":
		v, err := cExpr(l)
		if err != nil {
			return 0, err
		}
		c, err := l.next()
		if err != nil {
			return 0, err
		}
		if c.text != ")" {
			return 0, litErr(c, "expected ')', found %s", describeLit(c))
		}
		return v, nil
	case t.text == "offsetof":
		return cOffsetof(l, t)
	case t.text != "" && t.text[0] >= '0' && t.text[0] <= '9':
		return litNumber(t)
	}
	if v, ok := bpfNames()[t.text]; ok {
		return v, nil
	}
	return 0, litErr(t, "expected a number, a BPF_* name or offsetof(struct io_uring_bpf_ctx, field), found %s", describeLit(t))
}

// cOffsetof evaluates offsetof(struct io_uring_bpf_ctx, field) after
// "offsetof", where field is a context field such as socket.family.
func cOffsetof(l *litLexer, at litTok) (uint64, error) {
	var words []string
	for {
		t, err := l.next()
		if err != nil {
			return 0, err
		}
		if t.text == "" {
			return 0, litErr(at, "unterminated offsetof(")
		}
		if t.text == ")" {
			break
		}
		words = append(words, t.text)
	}
	// ( struct io_uring_bpf_ctx , field )
	if len(words) != 5 || words[0] != "(" || words[1] != "struct" || words[2] != "io_uring_bpf_ctx" || words[3] != "," {
		return 0, litErr(at, "offsetof reads offsetof(struct io_uring_bpf_ctx, field) only")
	}
	f, ok := abi.LookupField(words[4])
	if !ok {
		return 0, litErr(at, "struct io_uring_bpf_ctx has no field %q", words[4])
	}
	return uint64(f.Off), nil
}
