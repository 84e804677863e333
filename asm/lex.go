package asm

import "fmt"

// tokKind is the kind of a token of one source line.
type tokKind uint8

const (
	tEOF   tokKind = iota
	tIdent         // letters, digits, '_' and '.', not starting with a digit
	tNum           // a digit followed by letters, digits, '_' and '.'
	tPunct         // one of # [ ] ( ) , | + : -
)

// token is one token with its 1-based column.
type token struct {
	kind tokKind
	text string
	col  int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// lexLine splits one line (without its comment) into tokens. It fails at
// the first character that cannot start a token.
func lexLine(line string) ([]token, *token, string) {
	var toks []token
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(line) && isIdentChar(line[j]) {
				j++
			}
			toks = append(toks, token{tIdent, line[i:j], i + 1})
			i = j
		case '0' <= c && c <= '9':
			j := i + 1
			for j < len(line) && isIdentChar(line[j]) {
				j++
			}
			toks = append(toks, token{tNum, line[i:j], i + 1})
			i = j
		case c == '#' || c == '[' || c == ']' || c == '(' || c == ')' || c == ',' || c == '|' || c == '+' || c == ':' || c == '-':
			toks = append(toks, token{tPunct, line[i : i+1], i + 1})
			i++
		default:
			bad := token{tPunct, line[i : i+1], i + 1}
			return nil, &bad, fmt.Sprintf("unexpected character %q", line[i:i+1])
		}
	}
	toks = append(toks, token{tEOF, "", len(line) + 1})
	return toks, nil, ""
}
