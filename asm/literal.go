package asm

import (
	"fmt"
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
				hint = " (BPF_STMT/BPF_JUMP macros are not read; write numeric {code, jt, jf, k} elements)"
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
