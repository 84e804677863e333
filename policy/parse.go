package policy

import (
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/readlimit"
)

// Keys a policy file may use, per level.
var (
	policyKeys   = []string{"version", "name", "comment", "extends", "default", "register", "rules"}
	registerKeys = []string{"allow", "comment"}
	ruleKeys     = []string{"name", "comment", "ops", "action", "when"}
	maskedKeys   = []string{"mask", "value"}
)

// Load reads and parses the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := readlimit.File(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses a policy written in YAML or JSON (docs/policy.md). filename
// is used in positions, and to find the files the policy extends (see
// DefaultLoader); a policy that extends others is returned flattened. On
// failure the error is an ErrorList with every problem found, sorted by
// position, each as "file:line:col: message".
func Parse(data []byte, filename string) (*Policy, error) {
	return ParseWith(data, filename, DefaultLoader{})
}

func (rd *reader) policy(data []byte) *Policy {
	root := rd.document(data, "policy")
	if root == nil {
		return nil
	}
	pairs, ok := rd.mapping(root, "policy", policyKeys)
	if !ok {
		return nil
	}
	p := &Policy{File: rd.File}
	var haveVersion bool
	for _, kv := range pairs {
		switch kv.key {
		case "extends":
			rd.extendsList(kv.k, kv.v)
		case "version":
			haveVersion = true
			if kv.v.Kind != yaml.ScalarNode || kv.v.Tag != "!!int" {
				rd.Errorf(kv.v, "version must be a number (1), got %s", kindName(kv.v))
				continue
			}
			if kv.v.Value != "1" {
				rd.Errorf(kv.v, "unsupported policy version %s: this ringfence reads version %d", kv.v.Value, Version)
				continue
			}
			p.Version = Version
		case "name":
			p.Name, _ = rd.str(kv.v, "name")
		case "comment":
			p.Comment, _ = rd.str(kv.v, "comment")
		case "default":
			rd.haveDefault = true
			p.Default, _ = rd.action(kv.v, "default")
			p.DefaultPos = rd.At(kv.v)
		case "register":
			p.Register = rd.register(kv.v)
		case "rules":
			if kv.v.Kind == yaml.ScalarNode && kv.v.Tag == "!!null" {
				continue // "rules:" with nothing: no rules
			}
			if kv.v.Kind != yaml.SequenceNode {
				rd.Errorf(kv.v, "rules must be a list of rules, got %s", kindName(kv.v))
				continue
			}
			for _, rn := range kv.v.Content {
				if r, ok := rd.rule(rn); ok {
					p.Rules = append(p.Rules, r)
				}
			}
		}
	}
	if !haveVersion {
		rd.Errorf(root, "missing version: add \"version: 1\"")
	}
	if !rd.haveDefault && rd.extendsKey == nil {
		rd.Errorf(root, "missing default: add \"default: deny\" (or allow) for opcodes no rule matches")
	}
	return p
}

// register parses the register section.
func (rd *reader) register(n *yaml.Node) *Register {
	r := &Register{Pos: rd.At(n)}
	pairs, ok := rd.mapping(n, "register", registerKeys)
	if !ok {
		return r
	}
	haveAllow := false
	for _, kv := range pairs {
		switch kv.key {
		case "comment":
			r.Comment, _ = rd.str(kv.v, "comment")
		case "allow":
			haveAllow = true
			if kv.v.Kind != yaml.SequenceNode {
				rd.Errorf(kv.v, "register.allow must be a list of register operations such as [REGISTER_PROBE, REGISTER_FILES] ([] for none), got %s", kindName(kv.v))
				continue
			}
			r.Allow = distinct(rd, kv.v.Content, "register.allow", rd.registerOp)
		}
	}
	if !haveAllow {
		rd.Errorf(n, "register section has no allow list: add e.g. \"allow: [REGISTER_PROBE]\" (\"allow: []\" for none)")
	}
	return r
}

// registerOp parses one register operation: its name, with or without
// "IORING_", or a decimal number.
func (rd *reader) registerOp(n *yaml.Node) (abi.RegisterOp, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		rd.Errorf(n, "expected a register operation name or number, got %s", kindName(n))
		return 0, false
	}
	if op, ok := abi.LookupRegisterOp(n.Value); ok {
		return op, true
	}
	if n.Tag == "!!int" || (n.Value != "" && n.Value[0] >= '0' && n.Value[0] <= '9') {
		v, err := ParseNumber(n.Value)
		if err == nil && v < abi.RegisterOpLast {
			return abi.RegisterOp(v), true
		}
		rd.Errorf(n, "unknown register operation %s: they are 0 to %d (decimal)", n.Value, abi.RegisterOpLast-1)
		return 0, false
	}
	name := strings.TrimPrefix(strings.ToUpper(n.Value), "IORING_")
	rd.Errorf(n, "unknown register operation %q%s", n.Value, abi.DidYouMean(name, abi.RegisterOpNames()))
	return 0, false
}

// action parses "allow" or "deny".
func (rd *reader) action(n *yaml.Node, what string) (Action, bool) {
	s, ok := rd.str(n, what)
	if !ok {
		return Deny, false
	}
	switch s {
	case "allow":
		return Allow, true
	case "deny":
		return Deny, true
	}
	rd.Errorf(n, "%s must be allow or deny, got %q%s", what, s, abi.DidYouMean(s, []string{"allow", "deny"}))
	return Deny, false
}

func (rd *reader) rule(n *yaml.Node) (Rule, bool) {
	r := Rule{Pos: rd.At(n)}
	nerr := len(rd.Errs)
	pairs, ok := rd.mapping(n, "rule", ruleKeys)
	if !ok {
		return r, false
	}
	var when *yaml.Node
	var haveOps, haveAction bool
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			r.Name, _ = rd.str(kv.v, "name")
		case "comment":
			r.Comment, _ = rd.str(kv.v, "comment")
		case "action":
			haveAction = true
			r.Action, _ = rd.action(kv.v, "action")
		case "ops":
			haveOps = true
			r.Ops = rd.ops(kv.v)
		case "when":
			when = kv.v
		}
	}
	if !haveOps {
		rd.Errorf(n, "rule has no ops: add e.g. \"ops: [SOCKET]\"")
	}
	if !haveAction {
		rd.Errorf(n, "rule has no action: add \"action: allow\" or \"action: deny\"")
	}
	if when != nil && len(r.Ops) > 0 {
		r.Conds = rd.conds(when, r.Ops)
	}
	return r, len(rd.Errs) == nerr
}

// opNames returns every opcode's short name.
func opNames() []string {
	var names []string
	for _, o := range abi.Opcodes() {
		names = append(names, o.Name)
	}
	return names
}

func (rd *reader) ops(n *yaml.Node) []abi.Opcode {
	if n.Kind != yaml.SequenceNode {
		rd.Errorf(n, "ops must be a list of opcodes such as [READ, WRITE], got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		rd.Errorf(n, "ops is empty: a rule names at least one opcode")
		return nil
	}
	return distinct(rd, n.Content, "ops", rd.opcode)
}

// distinct parses the items of the list what with parse, in order,
// reporting an item that repeats an earlier one and leaving it out.
func distinct[T comparable](rd *reader, items []*yaml.Node, what string, parse func(*yaml.Node) (T, bool)) []T {
	var out []T
	seen := map[T]int{}
	for _, n := range items {
		x, ok := parse(n)
		if !ok {
			continue
		}
		if line, dup := seen[x]; dup {
			rd.Errorf(n, "%v is listed twice in %s (first on line %d)", x, what, line)
			continue
		}
		seen[x] = n.Line
		out = append(out, x)
	}
	return out
}

// opcode parses one opcode: short name, kernel name or decimal number.
func (rd *reader) opcode(n *yaml.Node) (abi.Opcode, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		rd.Errorf(n, "expected an opcode name or number, got %s", kindName(n))
		return 0, false
	}
	if info, ok := abi.LookupOpcode(n.Value); ok {
		return info.Op, true
	}
	if n.Tag == "!!int" || (n.Value != "" && n.Value[0] >= '0' && n.Value[0] <= '9') {
		rd.Errorf(n, "unknown opcode %s: opcodes are 0 to %d (decimal)", n.Value, abi.OpLast-1)
		return 0, false
	}
	name := strings.TrimPrefix(strings.ToUpper(n.Value), "IORING_OP_")
	rd.Errorf(n, "unknown opcode %q%s", n.Value, abi.DidYouMean(name, opNames()))
	return 0, false
}

// viewOps names the opcodes whose context has view v, e.g. "OPENAT and OPENAT2".
func viewOps(v abi.View) string {
	var names []string
	for _, o := range abi.Opcodes() {
		if o.View == v {
			names = append(names, o.Name)
		}
	}
	return joinAnd(names)
}

func joinAnd(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// fieldNames returns every policy field name.
func fieldNames() []string {
	var names []string
	for _, f := range Fields() {
		names = append(names, f.Name)
	}
	return names
}

// fieldsOfView lists the policy fields of view v ("open.flags, open.mode, ...").
func fieldsOfView(v abi.View) []string {
	var names []string
	for _, f := range Fields() {
		if f.View == v {
			names = append(names, f.Name)
		}
	}
	return names
}

// unknownField explains a condition key that is not a policy field.
func (rd *reader) unknownField(k *yaml.Node, ops []abi.Opcode) {
	name := k.Value
	switch name {
	case "opcode":
		rd.Errorf(k, "opcode is not a condition: the rule's ops choose the opcodes")
		return
	case "pdu_size":
		rd.Errorf(k, "pdu_size is not a policy field: the kernel sets it per opcode")
		return
	}
	// A bare "family" or "flags": suggest the field of the rule's opcodes.
	for _, f := range Fields() {
		if _, short, ok := strings.Cut(f.Name, "."); ok && short == name {
			for _, op := range ops {
				if FieldApplies(op, f.Name) {
					rd.Errorf(k, "unknown field %q; did you mean %s?", name, f.Name)
					return
				}
			}
		}
	}
	rd.Errorf(k, "unknown field %q%s (fields: %s)", name, abi.DidYouMean(name, fieldNames()),
		strings.Join(fieldNames(), ", "))
}

func (rd *reader) conds(n *yaml.Node, ops []abi.Opcode) []Cond {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "when:" with nothing: no conditions
	}
	pairs, ok := rd.mapping(n, "when", nil)
	if !ok {
		return nil
	}
	var conds []Cond
	for _, kv := range pairs {
		f, ok := LookupField(kv.key)
		if !ok {
			rd.unknownField(kv.k, ops)
			continue
		}
		if !rd.fieldApplies(kv.k, f, ops) {
			continue
		}
		conds = append(conds, rd.cond(kv.v, f)...)
	}
	return conds
}

// fieldApplies checks every opcode of the rule has field f, explaining why
// not otherwise.
func (rd *reader) fieldApplies(k *yaml.Node, f FieldSpec, ops []abi.Opcode) bool {
	var without, with []string
	for _, op := range ops {
		if FieldApplies(op, f.Name) {
			with = append(with, op.String())
		} else {
			without = append(without, op.String())
		}
	}
	if len(without) == 0 {
		return true
	}
	owners := viewOps(f.View)
	if len(with) > 0 {
		own := "a rule of its own"
		if len(with) > 1 {
			own = "rules of their own"
		}
		rd.Errorf(k, "%s exists only for %s, but this rule also names %s, whose context holds other data in that place; "+
			"put %s in %s", f.Name, owners, joinAnd(without), joinAnd(with), own)
		return false
	}
	op := ops[0]
	info, _ := op.Info()
	have := "only the common fields user_data and sqe_flags"
	if info.View != abi.ViewCommon {
		have = "fields " + strings.Join(append([]string{"user_data", "sqe_flags"}, fieldsOfView(info.View)...), ", ")
	}
	rd.Errorf(k, "%s exists only for %s; %s has %s", f.Name, owners, joinAnd(without), have)
	return false
}

// allowedOps returns the operators allowed on field f, for messages.
func allowedOps(f FieldSpec) []string {
	var names []string
	for _, o := range CmpOps() {
		if (o == CIDR || o == NotCIDR) == f.IsAddr() {
			names = append(names, o.String())
		}
	}
	return names
}

// cond parses the condition for field f: a scalar (eq, or cidr for
// connect.addr), a list (in, or cidr) or a mapping of operators.
func (rd *reader) cond(n *yaml.Node, f FieldSpec) []Cond {
	switch n.Kind {
	case yaml.ScalarNode:
		if f.IsAddr() {
			return rd.one(CIDR, n, f, n)
		}
		return rd.one(Eq, n, f, n)
	case yaml.SequenceNode:
		if f.IsAddr() {
			return rd.one(CIDR, n, f, n)
		}
		return rd.one(In, n, f, n)
	case yaml.MappingNode:
		pairs, ok := rd.mapping(n, "condition on "+f.Name, nil)
		if !ok {
			return nil
		}
		if len(pairs) == 0 {
			rd.Errorf(n, "empty condition on %s", f.Name)
			return nil
		}
		var out []Cond
		for _, kv := range pairs {
			op, ok := LookupCmpOp(kv.key)
			if !ok {
				rd.Errorf(kv.k, "unknown operator %q%s (operators for %s: %s)", kv.key,
					abi.DidYouMean(kv.key, allowedOps(f)), f.Name, strings.Join(allowedOps(f), ", "))
				continue
			}
			if (op == CIDR || op == NotCIDR) != f.IsAddr() {
				if f.IsAddr() {
					rd.Errorf(kv.k, "connect.addr takes only cidr and not_cidr (an address is a /32 or /128 prefix)")
				} else {
					rd.Errorf(kv.k, "%s applies only to connect.addr, not %s", kv.key, f.Name)
				}
				continue
			}
			out = append(out, rd.one(op, kv.v, f, kv.k)...)
		}
		return out
	}
	rd.Errorf(n, "condition on %s must be a value, a list or a mapping of operators, got %s", f.Name, kindName(n))
	return nil
}

// one parses the operand n of operator op on field f; at is where the
// operator was written.
func (rd *reader) one(op CmpOp, n *yaml.Node, f FieldSpec, at *yaml.Node) []Cond {
	c := Cond{Field: f.Name, Op: op, Pos: rd.At(at)}
	nerr := len(rd.Errs)
	switch op {
	case Eq, Ne, Lt, Le, Gt, Ge:
		if n.Kind == yaml.SequenceNode {
			hint := ""
			if op == Eq {
				hint = "; use in: [...] for a set"
			} else if op == Ne {
				hint = "; use not_in: [...] for a set"
			}
			rd.Errorf(n, "%s takes one value, got a list%s", op, hint)
			return nil
		}
		v, _ := rd.valueExpr(n, f)
		c.Values = []uint64{v}
	case In, NotIn:
		if n.Kind != yaml.SequenceNode {
			rd.Errorf(n, "%s takes a list of values, got %s", op, kindName(n))
			return nil
		}
		if len(n.Content) == 0 {
			rd.Errorf(n, "%s needs at least one value", op)
			return nil
		}
		for _, vn := range n.Content {
			v, ok := rd.valueExpr(vn, f)
			if ok {
				c.Values = append(c.Values, v)
			}
		}
	case Range, NotRange:
		if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
			rd.Errorf(n, "%s takes two values [lo, hi], got %s", op, kindName(n))
			return nil
		}
		lo, _ := rd.valueExpr(n.Content[0], f)
		hi, _ := rd.valueExpr(n.Content[1], f)
		c.Values = []uint64{lo, hi}
	case Masked:
		pairs, ok := rd.mapping(n, "masked", maskedKeys)
		if !ok {
			return nil
		}
		var mask, val uint64
		var haveMask, haveVal bool
		for _, kv := range pairs {
			v, _ := rd.valueExpr(kv.v, f)
			if kv.key == "mask" {
				mask, haveMask = v, true
			} else {
				val, haveVal = v, true
			}
		}
		if !haveMask || !haveVal {
			rd.Errorf(n, "masked needs both mask and value: {mask: M, value: V}")
			return nil
		}
		c.Values = []uint64{mask, val}
	case HasAll, HasAny, HasNone:
		var bits uint64
		switch n.Kind {
		case yaml.SequenceNode:
			if len(n.Content) == 0 {
				rd.Errorf(n, "%s needs at least one bit", op)
				return nil
			}
			for _, vn := range n.Content {
				v, _ := rd.valueExpr(vn, f)
				bits |= v
			}
		default:
			bits, _ = rd.valueExpr(n, f)
		}
		c.Values = []uint64{bits}
	case CIDR, NotCIDR:
		items := []*yaml.Node{n}
		if n.Kind == yaml.SequenceNode {
			items = n.Content
			if len(items) == 0 {
				rd.Errorf(n, "%s needs at least one prefix", op)
				return nil
			}
		}
		for _, pn := range items {
			if p, ok := rd.prefix(pn); ok {
				c.Nets = append(c.Nets, p)
			}
		}
	}
	if len(rd.Errs) != nerr {
		return nil
	}
	rd.checkIgnored(c, f)
	if len(rd.Errs) != nerr {
		return nil
	}
	return []Cond{c}
}

// checkIgnored rejects values that name bits normalisation clears, in
// operators where they could only mislead (sets, equality and bit tests).
func (rd *reader) checkIgnored(c Cond, f FieldSpec) {
	if f.Ignore == 0 {
		return
	}
	switch c.Op {
	case Lt, Le, Gt, Ge, Range, NotRange:
		return
	}
	for _, v := range c.Values {
		if v&f.Ignore == 0 {
			continue
		}
		switch f.Name {
		case "socket.type":
			rd.ErrorAt(c.Pos, "socket.type in a policy never has SOCK_NONBLOCK or SOCK_CLOEXEC: kernels differ "+
				"on whether filters see them, so ringfence removes them before comparing; drop them from the condition")
		case "open.flags":
			rd.ErrorAt(c.Pos, "open.flags in a policy never has O_LARGEFILE: the kernel adds it on 64-bit "+
				"machines, so ringfence removes it before comparing; drop it from the condition")
		}
		return
	}
}

// prefix parses an IPv4 or IPv6 prefix, or a bare address (a /32 or /128).
func (rd *reader) prefix(n *yaml.Node) (netip.Prefix, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		rd.Errorf(n, "expected an address prefix such as 10.0.0.0/8 or \"fd00::/8\", got %s", kindName(n))
		return netip.Prefix{}, false
	}
	s := strings.TrimSpace(n.Value)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			rd.Errorf(n, "invalid address %q: want an IPv4 or IPv6 address or prefix such as 10.0.0.0/8", s)
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		rd.Errorf(n, "invalid prefix %q: want an IPv4 or IPv6 prefix such as 10.0.0.0/8 or fd00::/8", s)
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		rd.Errorf(n, "prefix %s has bits set after the first %d; write %s", s, p.Bits(), m)
		return netip.Prefix{}, false
	}
	return p, true
}
