package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		in   string
		want Request
	}{
		{"op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=IPPROTO_TCP",
			Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 2, Type: 0o4001, Protocol: 6}}},
		{"socket.family=AF_UNIX op=45", Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 1}}},
		{"op=IORING_OP_OPENAT2 flags=O_CREAT|O_LARGEFILE mode=0o600 resolve=RESOLVE_IN_ROOT user_data=0x10 sqe_flags=IOSQE_ASYNC",
			Request{Op: abi.OpOpenat2, UserData: 16, SQEFlags: 16, Open: abi.OpenData{Flags: 0o100100, Mode: 0o600, Resolve: 0x10}}},
		{"op=CONNECT addr=10.0.0.1 port=443",
			Request{Op: abi.OpConnect, Connect: abi.ConnectData{Family: AFInet, Port: 443, Addr: [16]byte{10, 0, 0, 1}}}},
		{"op=CONNECT addr=::1 port=80",
			Request{Op: abi.OpConnect, Connect: abi.ConnectData{Family: AFInet6, Port: 80, Addr: [16]byte{15: 1}}}},
		{"op=CONNECT family=AF_UNIX", Request{Op: abi.OpConnect, Connect: abi.ConnectData{Family: 1}}},
		// emu's form: opcode= and full names.
		{"opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM user_data=7",
			Request{Op: abi.OpSocket, UserData: 7, Socket: abi.SocketData{Family: 2, Type: 1}}},
	}
	for _, tt := range tests {
		got, err := ParseRequest(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"family=AF_INET":                     "missing op",
		"op=SOCKT":                           `unknown opcode "SOCKT"; did you mean SOCKET?`,
		"op=SOCKET flags=0":                  `unknown field "flags" for SOCKET`,
		"op=OPENAT socket.family=2":          "socket.family exists only for SOCKET, not OPENAT",
		"op=SOCKET family=AF_INTE":           "did you mean AF_INET?",
		"op=SOCKET family":                   `"family": want key=value`,
		"op=SOCKET opcode=SOCKET":            "the opcode is given twice (op= and opcode=)",
		"op=SOCKET mode=0":                   `unknown field "mode" for SOCKET; did you mean op?`,
		"op=CONNECT port=70000":              "out of range",
		"op=CONNECT addr=::1 family=AF_INET": "does not belong to connect.family AF_INET",
		"op=CONNECT addr=nohost":             "invalid address",
		"op=SOCKET family=1 family=2":        "given twice",
	}
	for in, want := range bad {
		if _, err := ParseRequest(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRequest(%q) error = %v, want %q", in, err, want)
		}
	}
}

// TestParseRequestText covers what only a request without an opcode (emu
// --ctx) can say: its fields choose the opcode's data.
func TestParseRequestText(t *testing.T) {
	tests := []struct {
		in   string
		want RequestText
	}{
		{"connect.addr=::1", RequestText{Request: Request{Connect: abi.ConnectData{Family: AFInet6, Addr: [16]byte{15: 1}}}, View: abi.ViewConnect}},
		{"flags=O_CREAT mode=0o600", RequestText{Request: Request{Open: abi.OpenData{Flags: 0o100, Mode: 0o600}}, View: abi.ViewOpen}},
		{"socket.family=AF_INET type=SOCK_DGRAM", RequestText{Request: Request{Socket: abi.SocketData{Family: 2, Type: 2}}, View: abi.ViewSocket}},
		{"user_data=1", RequestText{Request: Request{UserData: 1}}},
		{"op=OPENAT", RequestText{Request: Request{Op: abi.OpOpenat}, HaveOp: true, View: abi.ViewOpen}},
	}
	for _, tt := range tests {
		got, err := ParseRequestText(tt.in)
		got.Fields = nil
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRequestText(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"socket.family=2 open.flags=1": "socket.family and open.flags belong to different opcodes' data",
		"family=2":                     "family is socket.family or connect.family: give the opcode (op=NAME) or the full name",
		"socket.famly=2":               `unknown field "socket.famly"; did you mean socket.family?`,
		"opcode=SOCKT":                 `opcode=SOCKT: unknown opcode "SOCKT"; did you mean SOCKET?`,
		"sqe_flags=0x100":              "sqe_flags=0x100: 0x100 is out of range (8 bits, at most 255)",
	}
	for in, want := range bad {
		if _, err := ParseRequestText(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRequestText(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestRequestString(t *testing.T) {
	tests := map[string]Request{
		"op=READ": {Op: abi.OpRead, Socket: abi.SocketData{Family: 2}},
		"op=SOCKET user_data=7 sqe_flags=IOSQE_IO_DRAIN|IOSQE_ASYNC socket.family=AF_INET socket.type=SOCK_STREAM|SOCK_NONBLOCK socket.protocol=IPPROTO_IP": {
			Op: abi.OpSocket, UserData: 7, SQEFlags: 0x12, Socket: abi.SocketData{Family: 2, Type: 0o4001}},
		"op=OPENAT open.flags=O_CREAT|O_LARGEFILE open.mode=0o644 open.resolve=0": {
			Op: abi.OpOpenat, Open: abi.OpenData{Flags: 0o100100, Mode: 0o644}},
		"op=CONNECT connect.family=AF_INET6 connect.port=443 connect.addr=fd00::1": {
			Op: abi.OpConnect, Connect: abi.ConnectData{Family: AFInet6, Port: 443, Addr: [16]byte{0: 0xfd, 15: 1}}},
	}
	for want, r := range tests {
		if got := r.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

const casesPolicy = `version: 1
default: deny
rules:
  - name: tcp
    ops: [SOCKET]
    action: allow
    when:
      socket.type: SOCK_STREAM
`

func TestCases(t *testing.T) {
	p := mustParse(t, casesPolicy)
	src := `cases:
  - name: tcp
    request: {op: SOCKET, socket.family: AF_INET, socket.type: SOCK_STREAM}
    expect: allow
    rule: tcp
  - name: tcp by number
    request: {op: SOCKET, socket.type: SOCK_STREAM}
    expect: allow
    rule: "1"
  - name: udp by default
    request: {op: SOCKET, socket.type: SOCK_DGRAM}
    expect: deny
    rule: default
  - name: wrong expectation
    request: {op: SOCKET, socket.type: SOCK_DGRAM}
    expect: allow
  - name: wrong rule
    request: {op: SOCKET, socket.type: SOCK_STREAM}
    expect: allow
    rule: default
  - name: no such rule
    request: {op: READ}
    expect: deny
    rule: nope
  - request: {op: CONNECT, connect.addr: "fd00::1", connect.port: 22}
    expect: deny
`
	cases, err := ParseCases([]byte(src), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"", "", "",
		`expected allow, got deny by the default (deny)`,
		`expected the decision from the default (deny), got it from rule 1 ("tcp") at line 4`,
		`no rule named "nope" (and not a rule number 1..1 or "default")`,
		"",
	}
	if len(cases) != len(want) {
		t.Fatalf("%d cases, want %d", len(cases), len(want))
	}
	for i, c := range cases {
		if _, diff := c.Check(p); diff != want[i] {
			t.Errorf("case %d %q: %q, want %q", i, c.Name, diff, want[i])
		}
	}
	if cases[6].Name != "case 7" || cases[6].Pos.Line != 25 || cases[6].Request.Connect.Family != AFInet6 {
		t.Errorf("unnamed case: %+v", cases[6])
	}
}

func TestCasesErrors(t *testing.T) {
	tests := map[string]string{
		"":                                    "c.yaml:1:1: empty cases file",
		"case: []\n":                          `unknown key "case" in cases file; did you mean cases?`,
		"comment: x\n":                        "missing cases",
		"cases: {}\n":                         "cases must be a list",
		"cases:\n  - {expect: allow}\n":       "c.yaml:2:5: case has no request",
		"cases:\n  - {request: {op: READ}}\n": "case has no expect",
		"cases:\n  - {request: {op: RAED}, expect: allow}\n":                                                     `c.yaml:2:20: unknown opcode "RAED"; did you mean READ?`,
		"cases:\n  - {request: {socket.family: 2}, expect: allow}\n":                                             "request has no op",
		"cases:\n  - {request: {op: READ, socket.family: 2}, expect: allow}\n":                                   "socket.family exists only for SOCKET, not READ",
		"cases:\n  - {request: {op: SOCKET, socket.family: AF_INTE}, expect: allow}\n":                           "did you mean AF_INET?",
		"cases:\n  - {request: {op: CONNECT, connect.addr: 1.2.3.4, connect.family: AF_INET6}, expect: allow}\n": "c.yaml:2:43: address 1.2.3.4 does not belong",
		"cases:\n  - {request: {op: READ}, expect: maybe}\n":                                                     `expect must be allow or deny, got "maybe"`,
	}
	for src, want := range tests {
		_, err := ParseCases([]byte(src), "c.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCases(%q) = %v, want %q", src, err, want)
		}
	}
}

// TestCasesOpcodeKey checks that a cases file's request takes opcode as
// well as op, as the one-line syntax does, but not both.
func TestCasesOpcodeKey(t *testing.T) {
	cs, err := ParseCases([]byte("cases:\n  - name: a\n    request: {opcode: SOCKET, family: AF_INET}\n    expect: allow\n"), "c.yaml")
	if err != nil || len(cs) != 1 || cs[0].Request.Op != abi.OpSocket || cs[0].Request.Socket.Family != 2 {
		t.Fatalf("opcode key: %+v, %v", cs, err)
	}
	_, err = ParseCases([]byte("cases:\n  - name: a\n    request: {op: NOP, opcode: SOCKET}\n    expect: allow\n"), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3:24: the opcode is given twice (op and opcode)") {
		t.Errorf("op and opcode: %v", err)
	}
}

// TestSetField sets every field to its largest value and reads it back.
func TestSetField(t *testing.T) {
	for _, f := range Fields() {
		var r Request
		r.Op = abi.OpSocket
		switch f.View {
		case abi.ViewOpen:
			r.Op = abi.OpOpenat2
		case abi.ViewConnect:
			r.Op = abi.OpConnect
		}
		ok := r.SetField(f.Name, f.Max())
		if f.IsAddr() {
			if ok {
				t.Errorf("SetField(%s) = true; addresses are not numbers", f.Name)
			}
			continue
		}
		if got, _ := FieldValue(r, f.Name); !ok || got != Normalize(f.Name, f.Max()) {
			t.Errorf("SetField(%s, %#x): ok %v, read back %#x", f.Name, f.Max(), ok, got)
		}
	}
	var r Request
	if r.SetField("socket.famly", 1) {
		t.Error("SetField of an unknown field = true")
	}
}
