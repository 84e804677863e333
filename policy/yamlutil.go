package policy

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/abi"
)

// reader walks yaml.Node trees and collects errors with positions. It is
// shared by the policy and the cases parsers.
type reader struct {
	FileErrors
	// Set by the policy parser: the extends list and its key, and whether
	// the file wrote a default.
	extends     []extendsRef
	extendsKey  *yaml.Node
	haveDefault bool
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as YAML (JSON is YAML) and returns the root node of
// its first document, or nil after recording why not.
func (rd *reader) document(data []byte, what string) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err == io.EOF {
		rd.ErrorAt(Pos{File: rd.File, Line: 1, Col: 1}, "empty %s", what)
		return nil
	}
	if err == nil {
		var extra yaml.Node
		if err2 := dec.Decode(&extra); err2 != io.EOF {
			if err2 == nil {
				rd.ErrorAt(Pos{File: rd.File, Line: extra.Line, Col: extra.Column},
					"a %s is one YAML document; this is a second one", what)
				return nil
			}
			err = err2
		}
	}
	if err != nil {
		msg := err.Error()
		p := Pos{File: rd.File}
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		rd.ErrorAt(p, "not valid YAML or JSON: %s", msg)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		rd.ErrorAt(Pos{File: rd.File, Line: 1, Col: 1}, "empty %s", what)
		return nil
	}
	root := doc.Content[0]
	if !rd.noAliases(root, 0) {
		return nil
	}
	return root
}

// noAliases rejects anchors' aliases and merge keys anywhere in n: they
// would make one place in the file mean several, and errors ambiguous.
func (rd *reader) noAliases(n *yaml.Node, depth int) bool {
	if depth > 100 {
		rd.Errorf(n, "nested too deeply")
		return false
	}
	if n.Kind == yaml.AliasNode {
		rd.Errorf(n, "YAML aliases (*%s) are not supported in policies; write the value out", n.Value)
		return false
	}
	ok := true
	for _, c := range n.Content {
		if !rd.noAliases(c, depth+1) {
			ok = false
		}
	}
	return ok
}

// kindName names a node kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// pair is one key/value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// mapping returns n's pairs in file order after checking n is a mapping
// with scalar, unique keys, all of them in allowed (when allowed is not
// nil). what names n in messages ("rule", "condition").
func (rd *reader) mapping(n *yaml.Node, what string, allowed []string) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		rd.Errorf(n, "%s must be a mapping (key: value), got %s", what, kindName(n))
		return nil, false
	}
	var out []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			rd.Errorf(k, "%s keys must be names, got %s", what, kindName(k))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			rd.Errorf(k, "duplicate key %q in %s (first at line %d)", k.Value, what, prev.Line)
			continue
		}
		seen[k.Value] = k
		if allowed != nil && !contains(allowed, k.Value) {
			rd.Errorf(k, "unknown key %q in %s%s (known: %s)", k.Value, what,
				abi.DidYouMean(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		out = append(out, pair{key: k.Value, k: k, v: v})
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns n's text after checking it is a string-like scalar.
func (rd *reader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		rd.Errorf(n, "%s must be text, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// groupNoun names a constant group in messages.
func groupNoun(g abi.Group) string {
	switch g {
	case abi.GroupFamily:
		return "address family"
	case abi.GroupSockType:
		return "socket type"
	case abi.GroupProto:
		return "protocol"
	case abi.GroupOpen:
		return "open flag"
	case abi.GroupMode:
		return "mode bit"
	case abi.GroupResolve:
		return "resolve flag"
	case abi.GroupSQE:
		return "SQE flag"
	}
	return string(g)
}

// ParseNumber parses an unsigned number as policies write it: decimal,
// 0x hex, 0o octal or 0b binary. A decimal number with a leading zero
// (0755) is rejected as ambiguous.
func ParseNumber(s string) (uint64, error) {
	base, digits := 10, s
	if len(s) >= 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base, digits = 16, s[2:]
		case 'o', 'O':
			base, digits = 8, s[2:]
		case 'b', 'B':
			base, digits = 2, s[2:]
		}
	}
	if base == 10 && len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9' {
		return 0, fmt.Errorf("ambiguous number %q: write 0o%s for octal or %s for decimal", s, s[1:], strings.TrimLeft(s, "0"))
	}
	if digits == "" || strings.ContainsAny(digits, "_+-") {
		return 0, fmt.Errorf("bad number %q", s)
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("number %q does not fit in 64 bits", s)
		}
		return 0, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}

// termPos returns the position of the byte at offset off of scalar n's
// text, when n is on one line and the offset can be mapped; else n's.
func (rd *reader) termPos(n *yaml.Node, off int) Pos {
	p := rd.At(n)
	switch n.Style {
	case 0:
		p.Col += off
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if !strings.ContainsAny(n.Value, "\n\\'") {
			p.Col += off + 1
		}
	}
	return p
}

// valueExpr parses a value for field f: numbers and constant names of f's
// group joined by "|". It records errors and returns ok=false on any.
func (rd *reader) valueExpr(n *yaml.Node, f FieldSpec) (uint64, bool) {
	if n.Kind != yaml.ScalarNode {
		rd.Errorf(n, "%s: expected a value (number or name), got %s", f.Name, kindName(n))
		return 0, false
	}
	switch n.Tag {
	case "!!int", "!!str":
	case "!!float":
		if strings.Trim(n.Value, "0123456789") != "" {
			rd.Errorf(n, "%s: %q is not a value; write a number or a constant name", f.Name, n.Value)
			return 0, false
		}
		// All digits: a number too big for YAML's integers; term says so.
	case "!!null":
		rd.Errorf(n, "%s: missing value", f.Name)
		return 0, false
	default:
		rd.Errorf(n, "%s: %q is not a value; write a number or a constant name", f.Name, n.Value)
		return 0, false
	}
	var v uint64
	ok := true
	off := 0
	for _, term := range strings.Split(n.Value, "|") {
		lead := len(term) - len(strings.TrimLeft(term, " \t"))
		t := strings.TrimSpace(term)
		tp := rd.termPos(n, off+lead)
		off += len(term) + 1
		if t == "" {
			rd.ErrorAt(tp, "%s: empty term in %q", f.Name, n.Value)
			ok = false
			continue
		}
		x, good := rd.term(tp, t, f)
		if !good {
			ok = false
			continue
		}
		v |= x
	}
	if ok && v > f.Max() {
		rd.Errorf(n, "%s: value %#x is out of range (%d bits, at most %d)", f.Name, v, f.Bits, f.Max())
		ok = false
	}
	return v, ok
}

// term parses one number or constant name for field f.
func (rd *reader) term(p Pos, t string, f FieldSpec) (uint64, bool) {
	if t[0] >= '0' && t[0] <= '9' {
		v, err := ParseNumber(t)
		if err != nil {
			rd.ErrorAt(p, "%s: %v", f.Name, err)
			return 0, false
		}
		if v > f.Max() {
			rd.ErrorAt(p, "%s: %s is out of range (%d bits, at most %d)", f.Name, t, f.Bits, f.Max())
			return 0, false
		}
		return v, true
	}
	if t[0] == '-' {
		rd.ErrorAt(p, "%s: negative value %s; values are unsigned", f.Name, t)
		return 0, false
	}
	if f.Group == "" {
		rd.ErrorAt(p, "%s takes numbers, not names like %q", f.Name, t)
		return 0, false
	}
	if c, ok := abi.LookupConst(t, f.Group); ok {
		return c.Value, true
	}
	if c, ok := abi.LookupConst(t, ""); ok {
		rd.ErrorAt(p, "%s is a%s %s, not a%s %s (field %s)", t, an(groupNoun(c.Group)), groupNoun(c.Group),
			an(groupNoun(f.Group)), groupNoun(f.Group), f.Name)
		return 0, false
	}
	rd.ErrorAt(p, "unknown %s %q%s", groupNoun(f.Group), t, abi.DidYouMean(t, abi.ConstNames(f.Group)))
	return 0, false
}

// an returns "n" when noun starts with a vowel sound, for "an open flag".
func an(noun string) string {
	if noun != "" && strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return "n"
	}
	return ""
}
