package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

func TestParseStructure(t *testing.T) {
	src := `# a comment
version: 1
name: demo
default: deny
rules:
  - name: sockets
    comment: tcp and udp
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: {in: [SOCK_STREAM, SOCK_DGRAM], ne: 0x3}
      socket.protocol: 0
  - ops: [IORING_OP_OPENAT, 28, openat2x]
    action: deny
`
	_, err := Parse([]byte(src), "s.yaml")
	if err == nil || !strings.Contains(err.Error(), `s.yaml:14:33: unknown opcode "openat2x"; did you mean OPENAT2?`) {
		t.Fatalf("want an unknown-opcode error with a suggestion, got %v", err)
	}
	src = strings.Replace(src, ", 28, openat2x]", ", 28]", 1)
	p, err := Parse([]byte(src), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Version: 1, Default: Deny, File: "s.yaml", Name: "demo",
		DefaultPos: Pos{"s.yaml", 4, 10},
		Rules: []Rule{
			{
				Name: "sockets", Comment: "tcp and udp", Ops: []abi.Opcode{abi.OpSocket}, Action: Allow,
				Pos: Pos{"s.yaml", 6, 5},
				Conds: []Cond{
					{Field: "socket.family", Op: In, Values: []uint64{2, 10}, Pos: Pos{"s.yaml", 11, 22}},
					{Field: "socket.type", Op: In, Values: []uint64{1, 2}, Pos: Pos{"s.yaml", 12, 21}},
					{Field: "socket.type", Op: Ne, Values: []uint64{3}, Pos: Pos{"s.yaml", 12, 52}},
					{Field: "socket.protocol", Op: Eq, Values: []uint64{0}, Pos: Pos{"s.yaml", 13, 24}},
				},
			},
			{Ops: []abi.Opcode{abi.OpOpenat, abi.OpOpenat2}, Action: Deny, Pos: Pos{"s.yaml", 14, 5}},
		},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse =\n%#v\nwant\n%#v", p, want)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		field, expr string
		want        uint64
	}{
		{"open.flags", "O_CREAT|O_TRUNC", 0o1100},
		{"open.flags", " O_CREAT | O_EXCL | 0x1 ", 0o301},
		{"open.mode", "0o644", 0o644},
		{"open.mode", "S_IRUSR|S_IWUSR", 0o600},
		{"open.resolve", "RESOLVE_IN_ROOT", 0x10},
		{"sqe_flags", "IOSQE_ASYNC", 16},
		{"socket.protocol", "IPPROTO_UDP", 17},
		{"connect.family", "AF_INET6", 10},
		{"connect.port", "0b1000000000000000", 1 << 15},
		{"connect.port", "65535", 65535},
		{"user_data", "0xffffffffffffffff", ^uint64(0)},
		{"socket.family", "0", 0},
	}
	for _, tt := range tests {
		src := "version: 1\ndefault: deny\nrules:\n  - ops: [" + opFor(tt.field) + "]\n    action: allow\n    when:\n      " +
			tt.field + ": {eq: \"" + tt.expr + "\"}\n"
		p, err := Parse([]byte(src), "v.yaml")
		if err != nil {
			t.Errorf("%s %q: %v", tt.field, tt.expr, err)
			continue
		}
		if got := p.Rules[0].Conds[0].Values[0]; got != tt.want {
			t.Errorf("%s %q = %#x, want %#x", tt.field, tt.expr, got, tt.want)
		}
	}
}

// opFor returns an opcode that has field f.
func opFor(f string) string {
	switch {
	case strings.HasPrefix(f, "socket."):
		return "SOCKET"
	case strings.HasPrefix(f, "open."):
		return "OPENAT"
	case strings.HasPrefix(f, "connect."):
		return "CONNECT"
	}
	return "NOP"
}

func TestParseNumber(t *testing.T) {
	good := map[string]uint64{"0": 0, "7": 7, "0x1F": 31, "0o17": 15, "0b101": 5, "18446744073709551615": ^uint64(0)}
	for s, want := range good {
		if got, err := ParseNumber(s); err != nil || got != want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	bad := map[string]string{
		"0755":                 "ambiguous",
		"18446744073709551616": "64 bits",
		"0x":                   "bad number",
		"1_000":                "bad number",
		"0xg":                  "bad number",
		"12a":                  "bad number",
	}
	for s, want := range bad {
		if _, err := ParseNumber(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseNumber(%q) error = %v, want %q", s, err, want)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	src := `version: 1
default: deny
rules:
  - ops: [CONNECT]
    action: allow
    when:
      connect.addr: {cidr: [10.0.0.0/8, "::1", "fd00::/8", 192.168.1.1], not_cidr: 10.9.0.0/16}
`
	p := mustParse(t, src)
	c := p.Rules[0].Conds
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.168.1.1/32")}
	if len(c) != 2 || c[0].Op != CIDR || !reflect.DeepEqual(c[0].Nets, want) || c[1].Op != NotCIDR ||
		c[1].Nets[0] != netip.MustParsePrefix("10.9.0.0/16") {
		t.Errorf("conds = %+v", c)
	}
	// Shorthand: a scalar or list on connect.addr means cidr.
	p = mustParse(t, strings.Replace(src, `{cidr: [10.0.0.0/8, "::1", "fd00::/8", 192.168.1.1], not_cidr: 10.9.0.0/16}`, `127.0.0.0/8`, 1))
	if c := p.Rules[0].Conds[0]; c.Op != CIDR || c.Nets[0] != netip.MustParsePrefix("127.0.0.0/8") {
		t.Errorf("shorthand = %+v", c)
	}
}

// TestParseErrors checks each error's position and message.
func TestParseErrors(t *testing.T) {
	head := "version: 1\ndefault: deny\nrules:\n"
	rule := func(ops, when string) string {
		s := head + "  - ops: [" + ops + "]\n    action: allow\n"
		if when != "" {
			s += "    when:\n      " + when + "\n"
		}
		return s
	}
	tests := []struct {
		name, src, want string
	}{
		{"not yaml", "version: [1\n", "e.yaml:1: not valid YAML or JSON"},
		{"empty", "", "e.yaml:1:1: empty policy"},
		{"not a mapping", "- 1\n", "e.yaml:1:1: policy must be a mapping"},
		{"missing version", "default: deny\n", "e.yaml:1:1: missing version"},
		{"missing default", "version: 1\n", "e.yaml:1:1: missing default"},
		{"bad version", "version: 2\ndefault: deny\n", "e.yaml:1:10: unsupported policy version 2"},
		{"version type", "version: one\ndefault: deny\n", "e.yaml:1:10: version must be a number"},
		{"unknown top key", "version: 1\ndefault: deny\nrulez: []\n", `e.yaml:3:1: unknown key "rulez" in policy; did you mean rules?`},
		{"duplicate key", "version: 1\ndefault: deny\ndefault: allow\n", `e.yaml:3:1: duplicate key "default" in policy (first at line 2)`},
		{"bad default", "version: 1\ndefault: permit\n", `e.yaml:2:10: default must be allow or deny, got "permit"`},
		{"rules not list", "version: 1\ndefault: deny\nrules: {}\n", "e.yaml:3:8: rules must be a list"},
		{"no ops", head + "  - action: allow\n", "e.yaml:4:5: rule has no ops"},
		{"no action", head + "  - ops: [NOP]\n", "e.yaml:4:5: rule has no action"},
		{"empty ops", rule("", ""), "e.yaml:4:10: ops is empty"},
		{"ops scalar", head + "  - ops: NOP\n    action: allow\n", "e.yaml:4:10: ops must be a list"},
		{"unknown opcode", rule("SOCKETT", ""), `e.yaml:4:11: unknown opcode "SOCKETT"; did you mean SOCKET?`},
		{"kernel name typo", rule("IORING_OP_SOCKEET", ""), `unknown opcode "IORING_OP_SOCKEET"; did you mean SOCKET?`},
		{"opcode number", rule("65", ""), "e.yaml:4:11: unknown opcode 65: opcodes are 0 to 64"},
		{"duplicate opcode", rule("READ, 22", ""), "e.yaml:4:17: READ is listed twice in ops"},
		{"unknown field", rule("SOCKET", "socket.famly: AF_INET"), `e.yaml:7:7: unknown field "socket.famly"; did you mean socket.family?`},
		{"short field", rule("OPENAT", "flags: 0"), `e.yaml:7:7: unknown field "flags"; did you mean open.flags?`},
		{"opcode field", rule("OPENAT", "opcode: 1"), "opcode is not a condition"},
		{"field not in op", rule("OPENAT", "socket.family: AF_INET"), "e.yaml:7:7: socket.family exists only for SOCKET; OPENAT has fields user_data, sqe_flags, open.flags, open.mode, open.resolve"},
		{"field in some ops", rule("SOCKET, OPENAT", "socket.family: AF_INET"), "e.yaml:7:7: socket.family exists only for SOCKET, but this rule also names OPENAT, whose context holds other data in that place; put SOCKET in a rule of its own"},
		{"field on opcode without data", rule("READ", "open.flags: 0"), "READ has only the common fields user_data and sqe_flags"},
		{"unknown family", rule("SOCKET", "socket.family: AF_INTE"), `e.yaml:7:22: unknown address family "AF_INTE"; did you mean AF_INET?`},
		{"wrong group", rule("SOCKET", "socket.family: O_CREAT"), "O_CREAT is an open flag, not an address family"},
		{"term position", rule("OPENAT", "open.flags: {has_any: O_CREAT|O_TRUNK}"), `e.yaml:7:37: unknown open flag "O_TRUNK"; did you mean O_TRUNC?`},
		{"names on port", rule("CONNECT", "connect.port: http"), `connect.port takes numbers, not names like "http"`},
		{"port range", rule("CONNECT", "connect.port: 65536"), "e.yaml:7:21: connect.port: 65536 is out of range (16 bits, at most 65535)"},
		{"u32 range", rule("SOCKET", "socket.protocol: 0x100000000"), "socket.protocol: 0x100000000 is out of range (32 bits"},
		{"u8 range", rule("NOP", "sqe_flags: 256"), "sqe_flags: 256 is out of range (8 bits"},
		{"or beyond width", rule("NOP", "sqe_flags: {has_any: IOSQE_ASYNC|0x100}"), "out of range"},
		{"negative", rule("NOP", "user_data: -1"), "negative value -1"},
		{"bool", rule("NOP", "user_data: true"), `"true" is not a value`},
		{"float", rule("NOP", "user_data: 1.5"), `"1.5" is not a value`},
		{"null", rule("NOP", "user_data:"), "user_data: missing value"},
		{"ambiguous octal", rule("OPENAT", "open.mode: 0644"), `ambiguous number "0644": write 0o644 for octal or 644 for decimal`},
		{"empty term", rule("OPENAT", "open.flags: O_CREAT||O_EXCL"), "empty term"},
		{"unknown operator", rule("NOP", "user_data: {has_al: 1}"), `e.yaml:7:19: unknown operator "has_al"; did you mean has_all?`},
		{"eq list", rule("NOP", "user_data: {eq: [1, 2]}"), "eq takes one value, got a list; use in: [...] for a set"},
		{"in scalar", rule("NOP", "user_data: {in: 1}"), "in takes a list of values"},
		{"in empty", rule("NOP", "user_data: {in: []}"), "in needs at least one value"},
		{"empty list shorthand", rule("NOP", "user_data: []"), "in needs at least one value"},
		{"range one", rule("NOP", "user_data: {range: [1]}"), "range takes two values [lo, hi]"},
		{"masked missing", rule("NOP", "user_data: {masked: {mask: 1}}"), "masked needs both mask and value"},
		{"masked key", rule("NOP", "user_data: {masked: {mask: 1, val: 1}}"), `unknown key "val" in masked; did you mean value?`},
		{"empty condition", rule("NOP", "user_data: {}"), "empty condition on user_data"},
		{"cidr on number", rule("CONNECT", "connect.port: {cidr: 10.0.0.0/8}"), "cidr applies only to connect.addr, not connect.port"},
		{"eq on addr", rule("CONNECT", "connect.addr: {eq: 1}"), "connect.addr takes only cidr and not_cidr"},
		{"bad cidr", rule("CONNECT", "connect.addr: 10.0.0.0/33"), `invalid prefix "10.0.0.0/33"`},
		{"host bits", rule("CONNECT", "connect.addr: 10.0.0.1/8"), "prefix 10.0.0.1/8 has bits set after the first 8; write 10.0.0.0/8"},
		{"bad addr", rule("CONNECT", "connect.addr: [localhost]"), `invalid address "localhost"`},
		{"nonblock in type", rule("SOCKET", "socket.type: SOCK_STREAM|SOCK_NONBLOCK"), "e.yaml:7:20: socket.type in a policy never has SOCK_NONBLOCK or SOCK_CLOEXEC"},
		{"cloexec in has_none", rule("SOCKET", "socket.type: {has_none: SOCK_CLOEXEC}"), "never has SOCK_NONBLOCK or SOCK_CLOEXEC"},
		{"nonblock number", rule("SOCKET", "socket.type: [1, 0x801]"), "never has SOCK_NONBLOCK"},
		{"largefile", rule("OPENAT", "open.flags: {has_any: O_LARGEFILE}"), "open.flags in a policy never has O_LARGEFILE"},
		{"unknown rule key", head + "  - ops: [NOP]\n    action: allow\n    whenn: {}\n", `unknown key "whenn" in rule; did you mean when?`},
		{"alias", "version: 1\ndefault: deny\nrules:\n  - ops: &o [NOP]\n    action: allow\n  - ops: *o\n    action: deny\n", "e.yaml:6:10: YAML aliases (*o) are not supported"},
		{"when list", rule("NOP", "") + "    when: [1]\n", "when must be a mapping"},
		{"two documents", "version: 1\ndefault: deny\n---\nversion: 1\n", "e.yaml:3:1: a policy is one YAML document; this is a second one"},
		{"huge number", rule("NOP", "user_data: 99999999999999999999"), `number "99999999999999999999" does not fit in 64 bits`},
		{"comment only", "# nothing\n", "e.yaml:1:1: empty policy"},
		{"register not a mapping", "version: 1\ndefault: deny\nregister: [REGISTER_PROBE]\n", "e.yaml:3:11: register must be a mapping"},
		{"register no allow", "version: 1\ndefault: deny\nregister: {comment: x}\n", "e.yaml:3:11: register section has no allow list"},
		{"register allow scalar", "version: 1\ndefault: deny\nregister: {allow: REGISTER_PROBE}\n", "e.yaml:3:19: register.allow must be a list"},
		{"register unknown op", "version: 1\ndefault: deny\nregister: {allow: [REGISTER_PROBES]}\n", `e.yaml:3:20: unknown register operation "REGISTER_PROBES"; did you mean REGISTER_PROBE?`},
		{"register number", "version: 1\ndefault: deny\nregister: {allow: [38]}\n", "e.yaml:3:20: unknown register operation 38: they are 0 to 37"},
		{"register twice", "version: 1\ndefault: deny\nregister: {allow: [REGISTER_PROBE, IORING_REGISTER_PROBE]}\n", "REGISTER_PROBE is listed twice in register.allow"},
		{"register key", "version: 1\ndefault: deny\nregister: {alow: []}\n", `unknown key "alow" in register; did you mean allow?`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "e.yaml")
		if err == nil {
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
			continue
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("%s: error is %T, want ErrorList", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s:\n got %v\nwant %q", tt.name, err, tt.want)
		}
	}
}

// TestParseAllErrors checks that every error is reported, sorted.
func TestParseAllErrors(t *testing.T) {
	src := `version: 1
default: deny
rules:
  - ops: [NOPE]
    action: alow
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INTE
      socket.type: {range: [1, 0x100000000]}
`
	_, err := Parse([]byte(src), "m.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Pos.String())
	}
	want := []string{"m.yaml:4:11", "m.yaml:5:13", "m.yaml:9:22", "m.yaml:10:32"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error positions %v, want %v\n%v", got, want, err)
	}
}

// TestParseJSON checks that the JSON form of a policy parses to the same
// model as its YAML form, with positions in the JSON text.
func TestParseJSON(t *testing.T) {
	js := `{
	"version": 1,
	"default": "deny",
	"rules": [
		{"ops": ["NOP", "READ"], "action": "allow"},
		{"ops": ["SOCKET"], "action": "allow",
		 "when": {"socket.family": ["AF_INET", "AF_INET6"], "socket.type": {"in": ["SOCK_STREAM"]}}},
		{"ops": ["OPENAT"], "action": "deny", "when": {"open.flags": {"has_any": "O_CREAT|O_TRUNC"}}},
		{"ops": ["CONNECT"], "action": "allow", "when": {"connect.addr": {"cidr": ["127.0.0.0/8"]}, "connect.port": {"range": [1024, 65535]}}}
	]
}`
	yml := `version: 1
default: deny
rules:
  - {ops: [NOP, READ], action: allow}
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: {in: [SOCK_STREAM]}
  - {ops: [OPENAT], action: deny, when: {open.flags: {has_any: O_CREAT|O_TRUNC}}}
  - ops: [CONNECT]
    action: allow
    when: {connect.addr: {cidr: [127.0.0.0/8]}, connect.port: {range: [1024, 65535]}}
`
	pj, err := Parse([]byte(js), "p.json")
	if err != nil {
		t.Fatal(err)
	}
	py := mustParse(t, yml)
	strip := func(p *Policy) *Policy {
		q := *p
		q.File, q.DefaultPos = "", Pos{}
		q.Rules = append([]Rule(nil), p.Rules...)
		for i := range q.Rules {
			q.Rules[i].Pos = Pos{}
			q.Rules[i].Conds = append([]Cond(nil), q.Rules[i].Conds...)
			for j := range q.Rules[i].Conds {
				q.Rules[i].Conds[j].Pos = Pos{}
			}
		}
		return &q
	}
	if !reflect.DeepEqual(strip(pj), strip(py)) {
		t.Errorf("JSON and YAML differ:\n%+v\n%+v", strip(pj), strip(py))
	}
	if pj.Rules[1].Pos != (Pos{"p.json", 6, 3}) {
		t.Errorf("JSON rule position %v, want p.json:6:3", pj.Rules[1].Pos)
	}
	_, err = Parse([]byte(`{"version": 1, "default": "deny", "rules": [{"ops": ["SOKET"], "action": "allow"}]}`), "b.json")
	if err == nil || !strings.Contains(err.Error(), `b.json:1:54: unknown opcode "SOKET"; did you mean SOCKET?`) {
		t.Errorf("JSON error: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := mustParse(t, decidePolicy)
	if err := good.Validate(); err != nil {
		t.Errorf("parsed policy does not validate: %v", err)
	}
	tests := []struct {
		name string
		p    Policy
		want string
	}{
		{"version", Policy{Version: 2}, "unsupported policy version 2"},
		{"action", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{1}, Action: 7}}}, "action 7 is neither"},
		{"no ops", Policy{Version: 1, Rules: []Rule{{}}}, "names no opcodes"},
		{"bad op", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{99}}}}, "unknown opcode 99"},
		{"dup op", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{1, 1}}}}, "listed twice"},
		{"field", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{1}, Conds: []Cond{{Field: "x", Op: Eq, Values: []uint64{1}}}}}}, `unknown field "x"`},
		{"operands", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{1}, Conds: []Cond{{Field: "user_data", Op: Range, Values: []uint64{1}}}}}}, "needs 2 values"},
		{"width", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{1}, Conds: []Cond{{Field: "sqe_flags", Op: Eq, Values: []uint64{256}}}}}}, "out of range"},
		{"cidr op", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{16}, Conds: []Cond{{Field: "connect.port", Op: CIDR}}}}}, "does not apply"},
		{"host bits", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{16}, Conds: []Cond{{Field: "connect.addr", Op: CIDR,
			Nets: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 8)}}}}}}, "host bits"},
		{"ignored bits", Policy{Version: 1, Rules: []Rule{{Ops: []abi.Opcode{45}, Conds: []Cond{{Field: "socket.type", Op: Eq, Values: []uint64{0o4001}}}}}}, "SOCK_NONBLOCK"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCondString(t *testing.T) {
	p := mustParse(t, decidePolicy)
	var got []string
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			got = append(got, c.String())
		}
	}
	want := []string{
		"socket.type eq SOCK_RAW",
		"socket.family in [AF_INET, AF_INET6]",
		"open.flags has_any O_CREAT|O_TRUNC",
		"open.resolve has_all RESOLVE_BENEATH",
		"open.flags masked {mask: O_ACCMODE, value: O_RDONLY}",
		"connect.addr cidr [127.0.0.0/8, ::1/128]",
		"connect.port range [1024, 65535]",
		"user_data ge 4294967296",
		"sqe_flags has_none IOSQE_IO_LINK",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Cond.String:\n%q\nwant\n%q", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("../examples/web-server.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "web-server.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLint(b *testing.B) {
	p, err := Load("../examples/web-server.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p.Lint()
	}
}

// TestParseRegister checks the register section: names with and without
// IORING_, numbers, the empty list, and no section at all.
func TestParseRegister(t *testing.T) {
	for _, tc := range []struct {
		src   string
		want  []abi.RegisterOp // nil with none: no section
		none  bool
		allow abi.RegisterOp
		deny  abi.RegisterOp
	}{
		{src: "register: {allow: [REGISTER_PROBE, IORING_REGISTER_FILES, 20]}", want: []abi.RegisterOp{8, 2, 20}, allow: 20, deny: abi.RegOpSendMsgRing},
		{src: "register:\n  comment: none\n  allow: []", want: []abi.RegisterOp{}, allow: 255, deny: abi.RegOpProbe},
		{src: "", none: true, allow: abi.RegOpSendMsgRing},
	} {
		p, err := Parse([]byte("version: 1\ndefault: deny\n"+tc.src+"\n"), "r.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if tc.none {
			if p.Register != nil {
				t.Errorf("%q: Register = %+v, want nil", tc.src, p.Register)
			}
		} else if p.Register == nil || len(p.Register.Allow) != len(tc.want) || fmt.Sprint(p.Register.Allow) != fmt.Sprint(tc.want) {
			t.Errorf("%q: Register = %+v, want allow %v", tc.src, p.Register, tc.want)
		}
		if tc.allow != 255 && !p.RegisterAllows(tc.allow) {
			t.Errorf("%q: RegisterAllows(%v) = false", tc.src, tc.allow)
		}
		if !tc.none && p.RegisterAllows(tc.deny) {
			t.Errorf("%q: RegisterAllows(%v) = true", tc.src, tc.deny)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%q: Validate: %v", tc.src, err)
		}
	}
}
