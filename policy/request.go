package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/readlimit"
)

// String writes r the way ParseRequest reads it, with only the fields r's
// opcode has and the common fields when nonzero:
// "op=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM socket.protocol=0".
func (r Request) String() string {
	var b strings.Builder
	b.WriteString("op=" + r.Op.String())
	put := func(name string, v uint64) {
		f, _ := LookupField(name)
		fmt.Fprintf(&b, " %s=%s", name, FormatValue(f, v))
	}
	if r.UserData != 0 {
		put("user_data", r.UserData)
	}
	if r.SQEFlags != 0 {
		put("sqe_flags", uint64(r.SQEFlags))
	}
	info, _ := r.Op.Info()
	switch info.View {
	case abi.ViewSocket:
		put("socket.family", uint64(r.Socket.Family))
		put("socket.type", uint64(r.Socket.Type))
		put("socket.protocol", uint64(r.Socket.Protocol))
	case abi.ViewOpen:
		put("open.flags", r.Open.Flags)
		put("open.mode", r.Open.Mode)
		put("open.resolve", r.Open.Resolve)
	case abi.ViewConnect:
		put("connect.family", uint64(r.Connect.Family))
		put("connect.port", uint64(r.Connect.Port))
		switch r.Connect.Family {
		case AFInet:
			fmt.Fprintf(&b, " connect.addr=%s", netip.AddrFrom4([4]byte(r.Connect.Addr[:4])))
		case AFInet6:
			fmt.Fprintf(&b, " connect.addr=%s", netip.AddrFrom16(r.Connect.Addr))
		}
	}
	return b.String()
}

// requestField resolves a request key for opcode op: a policy field name,
// or its short form ("family" for socket.family on SOCKET). Without an
// opcode (haveOp false), a short form names the field of view (the one
// the other keys chose) or, if that is not known yet, the only field with
// that short form in any opcode's data, if there is one.
func requestField(op abi.Opcode, haveOp bool, view abi.View, key string) (FieldSpec, error) {
	if f, ok := LookupField(key); ok {
		if haveOp && !FieldApplies(op, key) {
			return f, fmt.Errorf("%s exists only for %s, not %s", key, viewOps(f.View), op)
		}
		return f, nil
	}
	var matches []FieldSpec
	for _, f := range Fields() {
		_, short, ok := strings.Cut(f.Name, ".")
		if !ok || short != key {
			continue
		}
		switch {
		case haveOp && FieldApplies(op, f.Name), !haveOp && view == f.View:
			return f, nil
		case !haveOp && view == abi.ViewCommon:
			matches = append(matches, f)
		}
	}
	if len(matches) == 1 {
		return matches[0], nil
	}
	if len(matches) > 1 {
		names := make([]string, len(matches))
		for i, f := range matches {
			names[i] = f.Name
		}
		return FieldSpec{}, fmt.Errorf("%s is %s: give the opcode (op=NAME) or the full name", key, joinOr(names))
	}
	known := []string{"op", "opcode"}
	for _, f := range Fields() {
		if !haveOp || FieldApplies(op, f.Name) {
			known = append(known, f.Name)
		}
	}
	where := ""
	if haveOp {
		where = " for " + op.String()
	}
	return FieldSpec{}, fmt.Errorf("unknown field %q%s%s (fields: %s)", key, where,
		abi.DidYouMean(key, known), strings.Join(known, ", "))
}

// joinOr joins names as "a, b or c".
func joinOr(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// SetField stores v in r's field named name (a policy field name, not
// connect.addr: see Request.Connect) and reports whether there is such a
// field.
func (r *Request) SetField(name string, v uint64) bool {
	f, ok := LookupField(name)
	if !ok || f.IsAddr() {
		return false
	}
	r.set(f, v)
	return true
}

// set stores v in r's field f (not connect.addr).
func (r *Request) set(f FieldSpec, v uint64) {
	switch f.Name {
	case "user_data":
		r.UserData = v
	case "sqe_flags":
		r.SQEFlags = uint8(v)
	case "socket.family":
		r.Socket.Family = uint32(v)
	case "socket.type":
		r.Socket.Type = uint32(v)
	case "socket.protocol":
		r.Socket.Protocol = uint32(v)
	case "open.flags":
		r.Open.Flags = v
	case "open.mode":
		r.Open.Mode = v
	case "open.resolve":
		r.Open.Resolve = v
	case "connect.family":
		r.Connect.Family = uint32(v)
	case "connect.port":
		r.Connect.Port = uint16(v)
	}
}

// setAddr stores a CONNECT address and, unless the family was given, the
// matching family. An IPv4 address with AF_INET6 or an IPv6 one with AF_INET
// is an error (write an IPv4-mapped ::ffff:a.b.c.d for the former).
func (r *Request) setAddr(a netip.Addr, familyGiven bool) error {
	if familyGiven && (r.Connect.Family == AFInet && !a.Is4() || r.Connect.Family == AFInet6 && a.Is4()) {
		fam, _ := abi.ConstName(abi.GroupFamily, uint64(r.Connect.Family))
		return fmt.Errorf("address %s does not belong to connect.family %s", a, fam)
	}
	r.Connect.Addr = a.As16()
	if a.Is4() {
		r.Connect.Addr = [16]byte{}
		copy(r.Connect.Addr[:], a.AsSlice())
	}
	if !familyGiven {
		r.Connect.Family = AFInet6
		if a.Is4() {
			r.Connect.Family = AFInet
		}
	}
	return nil
}

// RequestText is a request parsed from key=value text by
// ParseRequestText, with what the text said about itself.
type RequestText struct {
	Request Request
	// HaveOp is true when the text named the opcode (op= or opcode=).
	HaveOp bool
	// View is the per-opcode data the fields given belong to: the
	// opcode's when it was named, else that of the fields (ViewCommon
	// for none).
	View abi.View
	// Fields are the policy names of the fields given, in order.
	Fields []string
}

// ParseRequestText parses a request written as space-separated key=value
// pairs, the one request syntax of ringfence (explain --sqe, emu --ctx,
// and the keys of a cases file's requests): the opcode as op= or opcode=
// (short name, kernel name or number), fields by policy name
// (socket.family) or short name (family, type, protocol, flags, mode,
// resolve, port, addr, user_data, sqe_flags), values as in policies
// (numbers or constant names joined by "|"), for example
// "op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK". Unlike
// policies, requests may carry SOCK_NONBLOCK, SOCK_CLOEXEC and
// O_LARGEFILE: they are what the kernel shows. connect.addr sets
// connect.family too, unless it is given. Without an opcode the request
// is a NOP, and its fields must all belong to one opcode's data (a short
// name is then resolved in that data, or must be unambiguous).
func ParseRequestText(s string) (RequestText, error) {
	var t RequestText
	r := &t.Request
	fields := strings.Fields(s)
	opKey := ""
	for _, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return t, fmt.Errorf("%q: want key=value", kv)
		}
		if k != "op" && k != "opcode" {
			continue
		}
		if opKey != "" {
			return t, fmt.Errorf("the opcode is given twice (%s= and %s=)", opKey, k)
		}
		opKey = k
		info, ok := abi.LookupOpcode(v)
		if !ok {
			return t, fmt.Errorf("%s=%s: unknown opcode %q%s", k, v, v,
				abi.DidYouMean(strings.TrimPrefix(strings.ToUpper(v), "IORING_OP_"), opNames()))
		}
		r.Op, t.HaveOp = info.Op, true
		t.View = info.View
	}
	familyGiven := false
	var addr *netip.Addr
	var viewKey string
	seen := map[string]bool{}
	for _, kv := range fields {
		k, v, _ := strings.Cut(kv, "=")
		if k == "op" || k == "opcode" {
			continue
		}
		f, err := requestField(r.Op, t.HaveOp, t.View, k)
		if err != nil {
			return t, err
		}
		if seen[f.Name] {
			return t, fmt.Errorf("%s given twice", f.Name)
		}
		seen[f.Name] = true
		t.Fields = append(t.Fields, f.Name)
		if f.View != abi.ViewCommon && !t.HaveOp {
			if t.View != abi.ViewCommon && t.View != f.View {
				return t, fmt.Errorf("%s and %s belong to different opcodes' data", viewKey, f.Name)
			}
			t.View, viewKey = f.View, f.Name
		}
		if f.IsAddr() {
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" {
				return t, fmt.Errorf("%s=%s: invalid address %q: want an IPv4 or IPv6 address", k, v, v)
			}
			addr = &a
			continue
		}
		rd := &reader{}
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
		x, ok := rd.valueExpr(n, f)
		if !ok {
			msgs := make([]string, len(rd.Errs))
			for i, e := range rd.Errs {
				msgs[i] = strings.TrimPrefix(e.Msg, f.Name+": ")
			}
			return t, fmt.Errorf("%s=%s: %s", k, v, strings.Join(msgs, "; "))
		}
		if f.Name == "connect.family" {
			familyGiven = true
		}
		r.set(f, x)
	}
	if addr != nil {
		if err := r.setAddr(*addr, familyGiven); err != nil {
			return t, err
		}
	}
	return t, nil
}

// ParseRequest parses a request in the syntax of ParseRequestText, which
// must name the opcode. Its errors start with "request: ".
func ParseRequest(s string) (Request, error) {
	haveOp := false
	for _, kv := range strings.Fields(s) {
		haveOp = haveOp || strings.HasPrefix(kv, "op=") || strings.HasPrefix(kv, "opcode=")
	}
	if !haveOp {
		return Request{}, fmt.Errorf("request: missing op=NAME")
	}
	t, err := ParseRequestText(s)
	if err != nil {
		return t.Request, fmt.Errorf("request: %w", err)
	}
	return t.Request, nil
}

// Case is one policy unit test: a request and the decision expected.
type Case struct {
	Name    string
	Request Request
	Expect  Action
	// Rule, if not "", is the rule expected to decide: its name, its
	// 1-based number, or "default".
	Rule string
	Pos  Pos
}

var (
	casesKeys = []string{"cases", "comment"}
	caseKeys  = []string{"name", "request", "expect", "rule", "comment"}
)

// LoadCases reads and parses a cases file.
func LoadCases(path string) ([]Case, error) {
	data, err := readlimit.File(path)
	if err != nil {
		return nil, err
	}
	return ParseCases(data, path)
}

// ParseCases parses a cases file (docs/policy.md, "Policy tests"):
//
//	cases:
//	  - name: tcp socket allowed
//	    request: {op: SOCKET, socket.family: AF_INET, socket.type: SOCK_STREAM}
//	    expect: allow
//	    rule: tcp sockets        # optional: the deciding rule's name, number or "default"
//
// Errors are an ErrorList, like Parse's.
func ParseCases(data []byte, filename string) ([]Case, error) {
	rd := &reader{FileErrors: FileErrors{File: filename}}
	cases := rd.cases(data)
	if len(rd.Errs) > 0 {
		return nil, sortErrors(rd.Errs)
	}
	return cases, nil
}

func (rd *reader) cases(data []byte) []Case {
	root := rd.document(data, "cases file")
	if root == nil {
		return nil
	}
	pairs, ok := rd.mapping(root, "cases file", casesKeys)
	if !ok {
		return nil
	}
	var out []Case
	found := false
	for _, kv := range pairs {
		if kv.key != "cases" {
			continue
		}
		found = true
		if kv.v.Kind != yaml.SequenceNode {
			rd.Errorf(kv.v, "cases must be a list, got %s", kindName(kv.v))
			continue
		}
		for i, cn := range kv.v.Content {
			if c, ok := rd.oneCase(cn, i); ok {
				out = append(out, c)
			}
		}
	}
	if !found {
		rd.Errorf(root, "missing cases: add \"cases:\" with a list of cases")
	}
	return out
}

func (rd *reader) oneCase(n *yaml.Node, i int) (Case, bool) {
	c := Case{Pos: rd.At(n), Name: fmt.Sprintf("case %d", i+1)}
	nerr := len(rd.Errs)
	pairs, ok := rd.mapping(n, "case", caseKeys)
	if !ok {
		return c, false
	}
	var haveReq, haveExpect bool
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			c.Name, _ = rd.str(kv.v, "name")
		case "expect":
			haveExpect = true
			c.Expect, _ = rd.action(kv.v, "expect")
		case "rule":
			c.Rule, _ = rd.str(kv.v, "rule")
		case "request":
			haveReq = true
			c.Request = rd.request(kv.v)
		}
	}
	if !haveReq {
		rd.Errorf(n, "case has no request")
	}
	if !haveExpect {
		rd.Errorf(n, "case has no expect: add \"expect: allow\" or \"expect: deny\"")
	}
	return c, len(rd.Errs) == nerr
}

func (rd *reader) request(n *yaml.Node) Request {
	var r Request
	pairs, ok := rd.mapping(n, "request", nil)
	if !ok {
		return r
	}
	haveOp, opKey := false, ""
	for _, kv := range pairs {
		if kv.key == "op" || kv.key == "opcode" {
			if opKey != "" {
				rd.Errorf(kv.k, "the opcode is given twice (%s and %s)", opKey, kv.key)
				continue
			}
			opKey = kv.key
			op, ok := rd.opcode(kv.v)
			r.Op, haveOp = op, ok
		}
	}
	if !haveOp {
		if opKey == "" {
			rd.Errorf(n, "request has no op")
		}
		return r
	}
	familyGiven := false
	for _, kv := range pairs {
		if kv.key == "connect.family" {
			familyGiven = true
		}
	}
	var addrNode *yaml.Node
	var addr netip.Addr
	for _, kv := range pairs {
		if kv.key == "op" || kv.key == "opcode" {
			continue
		}
		f, err := requestField(r.Op, true, abi.ViewCommon, kv.key)
		if err != nil {
			rd.Errorf(kv.k, "%v", err)
			continue
		}
		if f.IsAddr() {
			s, ok := rd.str(kv.v, "connect.addr")
			if !ok {
				continue
			}
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || a.Zone() != "" {
				rd.Errorf(kv.v, "invalid address %q: want an IPv4 or IPv6 address", s)
				continue
			}
			addrNode, addr = kv.v, a
			continue
		}
		if v, ok := rd.valueExpr(kv.v, f); ok {
			r.set(f, v)
		}
	}
	if addrNode != nil {
		if err := r.setAddr(addr, familyGiven); err != nil {
			rd.Errorf(addrNode, "%v", err)
		}
	}
	return r
}

// ruleIndex resolves a case's expected rule: a name, a 1-based number or
// "default" (-1).
func (p *Policy) ruleIndex(s string) (int, error) {
	if s == "default" {
		return -1, nil
	}
	for i, r := range p.Rules {
		if r.Name == s {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(p.Rules) {
		return n - 1, nil
	}
	return 0, fmt.Errorf("no rule named %q (and not a rule number 1..%d or \"default\")", s, len(p.Rules))
}

// Describe names who decided d: `rule 3 ("web")` or "the default".
func (p *Policy) Describe(d Decision) string {
	if d.Rule < 0 || d.Rule >= len(p.Rules) {
		return "the default (" + p.Default.String() + ")"
	}
	r := p.Rules[d.Rule]
	s := r.Label(d.Rule)
	switch {
	case r.From != "" && r.Pos.Line > 0:
		s += " at " + r.Pos.String()
	case r.Pos.Line > 0:
		s += fmt.Sprintf(" at line %d", r.Pos.Line)
	}
	return s
}

// Check runs c against p with the reference evaluator. It returns the
// decision and "" when the case passes, or a sentence saying what differed.
func (c Case) Check(p *Policy) (Decision, string) {
	d := p.Decide(c.Request)
	var diffs []string
	if d.Action() != c.Expect {
		diffs = append(diffs, fmt.Sprintf("expected %s, got %s by %s", c.Expect, d.Action(), p.Describe(d)))
	}
	if c.Rule != "" {
		want, err := p.ruleIndex(c.Rule)
		switch {
		case err != nil:
			diffs = append(diffs, err.Error())
		case want != d.Rule:
			diffs = append(diffs, fmt.Sprintf("expected the decision from %s, got it from %s",
				p.Describe(Decision{Rule: want}), p.Describe(d)))
		}
	}
	return d, strings.Join(diffs, "; ")
}
