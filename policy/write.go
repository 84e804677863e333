package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML writes p as a policy file that Parse reads back to the same policy:
// the same version, default, name and comments, register section, and
// rules with their opcodes, actions and conditions, values by constant
// name where one stands for them (FormatValue). Positions are not written
// (Parse gives the new file's), nor is extends: Rules already holds the
// bases' rules, flattened, so the file stands alone; each inherited rule
// carries a comment naming the base it came from.
//
// Conditions on one field are written together, in the order of the
// field's first condition; as every condition of a rule must hold, that
// order changes no decision. A file writes each operator once per field, so
// a rule with two conditions of the same operator on the same field (which
// only code can build) cannot be written and is an error, as is a policy
// Validate rejects.
func (p *Policy) YAML() ([]byte, error) {
	n, err := p.node(true)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("%s: writing YAML: %w", p.name(), err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("%s: writing YAML: %w", p.name(), err)
	}
	return b.Bytes(), nil
}

// JSON writes p as a JSON policy file that Parse reads back to the same
// policy, as YAML does (without the comments on inherited rules, which
// JSON cannot hold). Numbers up to 2^53 are JSON numbers; larger ones, and
// hexadecimal and octal values, are strings.
func (p *Policy) JSON() ([]byte, error) {
	n, err := p.node(false)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeJSON(&b, n, 0)
	b.WriteByte('\n')
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("%s: wrote invalid JSON", p.name())
	}
	return b.Bytes(), nil
}

// name is the policy's name for messages.
func (p *Policy) name() string {
	if p.File != "" {
		return p.File
	}
	return "policy"
}

// node builds the document; comments says whether to add YAML comments.
func (p *Policy) node(comments bool) (*yaml.Node, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	doc := mapNode()
	addPair(doc, "version", intNode(strconv.Itoa(p.Version)))
	if p.Name != "" {
		addPair(doc, "name", strNode(p.Name))
	}
	if p.Comment != "" {
		addPair(doc, "comment", strNode(p.Comment))
	}
	addPair(doc, "default", strNode(p.Default.String()))
	if r := p.Register; r != nil {
		sec := mapNode()
		if r.Comment != "" {
			addPair(sec, "comment", strNode(r.Comment))
		}
		addPair(sec, "allow", stringSeq(r.Allow))
		addPair(doc, "register", sec)
	}
	rules := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i, r := range p.Rules {
		rn, err := ruleNode(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", p.name(), r.Label(i), err)
		}
		if comments && r.From != "" {
			rn.HeadComment = "from " + r.From
		}
		rules.Content = append(rules.Content, rn)
	}
	if len(rules.Content) == 0 {
		rules.Style = yaml.FlowStyle
	}
	addPair(doc, "rules", rules)
	return doc, nil
}

// ruleNode writes one rule.
func ruleNode(r Rule) (*yaml.Node, error) {
	n := mapNode()
	if r.Name != "" {
		addPair(n, "name", strNode(r.Name))
	}
	if r.Comment != "" {
		addPair(n, "comment", strNode(r.Comment))
	}
	addPair(n, "ops", stringSeq(r.Ops))
	addPair(n, "action", strNode(r.Action.String()))
	if len(r.Conds) == 0 {
		return n, nil
	}
	// Group the conditions by field, in the order of each field's first.
	var fields []string
	byField := map[string][]Cond{}
	for _, c := range r.Conds {
		if _, ok := byField[c.Field]; !ok {
			fields = append(fields, c.Field)
		}
		for _, d := range byField[c.Field] {
			if d.Op == c.Op {
				return nil, fmt.Errorf("two %s conditions on %s: a policy file writes each operator once per field", c.Op, c.Field)
			}
		}
		byField[c.Field] = append(byField[c.Field], c)
	}
	when := mapNode()
	for _, name := range fields {
		f, _ := LookupField(name)
		conds := byField[name]
		if len(conds) == 1 {
			// The shorthands: a value means eq, a list in (cidr for
			// connect.addr).
			switch c := conds[0]; {
			case c.Op == Eq:
				addPair(when, name, valueNode(f, c.Values[0]))
				continue
			case c.Op == In, c.Op == CIDR:
				addPair(when, name, operandNode(f, c))
				continue
			}
		}
		m := flowMap()
		for _, c := range conds {
			addPair(m, c.Op.String(), operandNode(f, c))
		}
		addPair(when, name, m)
	}
	addPair(n, "when", when)
	return n, nil
}

// operandNode writes the operand of condition c on field f.
func operandNode(f FieldSpec, c Cond) *yaml.Node {
	switch c.Op {
	case In, NotIn, Range, NotRange:
		s := flowSeq()
		for _, v := range c.Values {
			s.Content = append(s.Content, valueNode(f, v))
		}
		return s
	case Masked:
		m := flowMap()
		addPair(m, "mask", valueNode(f, c.Values[0]))
		addPair(m, "value", valueNode(f, c.Values[1]))
		return m
	case CIDR, NotCIDR:
		return stringSeq(c.Nets)
	}
	return valueNode(f, c.Values[0])
}

// valueNode writes v for field f: a name, names joined by "|", or a
// number (decimal, 0x hex or 0o octal).
func valueNode(f FieldSpec, v uint64) *yaml.Node {
	s := FormatValue(f, v)
	if s[0] >= '0' && s[0] <= '9' {
		return intNode(s)
	}
	return strNode(s)
}

func mapNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }
func flowMap() *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
}
func flowSeq() *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
}

// stringSeq writes xs as a flow list of their String forms.
func stringSeq[T fmt.Stringer](xs []T) *yaml.Node {
	s := flowSeq()
	for _, x := range xs {
		s.Content = append(s.Content, strNode(x.String()))
	}
	return s
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
func intNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s} }

// addPair appends key: v to mapping m.
func addPair(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

// writeJSON writes node n as JSON at indentation depth: block mappings
// one key per line, flow mappings and sequences (conditions, opcode lists)
// on one line, as the YAML form lays them out; decimal integers up to 2^53
// as numbers, other scalars as strings.
func writeJSON(b *bytes.Buffer, n *yaml.Node, depth int) {
	switch {
	case n.Kind == yaml.MappingNode && n.Style != yaml.FlowStyle && len(n.Content) > 0:
		b.WriteString("{\n")
		for i := 0; i+1 < len(n.Content); i += 2 {
			b.WriteString(strings.Repeat("  ", depth+1))
			writeJSON(b, n.Content[i], depth+1)
			b.WriteString(": ")
			writeJSON(b, n.Content[i+1], depth+1)
			if i+2 < len(n.Content) {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat("  ", depth) + "}")
	case n.Kind == yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, n.Content[i], depth)
			b.WriteString(": ")
			writeJSON(b, n.Content[i+1], depth)
		}
		b.WriteByte('}')
	case n.Kind == yaml.SequenceNode && n.Style != yaml.FlowStyle && len(n.Content) > 0:
		b.WriteString("[\n")
		for i, c := range n.Content {
			b.WriteString(strings.Repeat("  ", depth+1))
			writeJSON(b, c, depth+1)
			if i+1 < len(n.Content) {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat("  ", depth) + "]")
	case n.Kind == yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, c, depth)
		}
		b.WriteByte(']')
	default:
		if v, err := strconv.ParseUint(n.Value, 10, 64); err == nil && n.Tag == "!!int" && v <= 1<<53 {
			b.WriteString(n.Value)
			return
		}
		s, _ := json.Marshal(n.Value)
		b.Write(s)
	}
}
