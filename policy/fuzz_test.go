package policy

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// fuzzRequests derives a few requests from the fuzzer's bytes.
func fuzzRequests(seed []byte) []Request {
	var b [48]byte
	copy(b[:], seed)
	le := binary.LittleEndian
	var reqs []Request
	for _, op := range []abi.Opcode{abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect, abi.OpNop, abi.Opcode(b[0])} {
		r := Request{Op: op, UserData: le.Uint64(b[0:]), SQEFlags: b[8]}
		r.Socket = abi.SocketData{Family: le.Uint32(b[8:]) % 50, Type: le.Uint32(b[12:]), Protocol: le.Uint32(b[16:]) % 300}
		r.Open = abi.OpenData{Flags: le.Uint64(b[16:]), Mode: le.Uint64(b[24:]) & 0o7777, Resolve: le.Uint64(b[32:]) & 0x3f}
		r.Connect = abi.ConnectData{Family: []uint32{AFInet, AFInet6, 1}[b[9]%3], Port: le.Uint16(b[10:])}
		copy(r.Connect.Addr[:], b[32:48])
		reqs = append(reqs, r)
	}
	return reqs
}

// FuzzParse checks that no input makes Parse panic, that everything it
// accepts validates, lints and decides without panicking, and that
// decisions name a rule that names the request's opcode.
func FuzzParse(f *testing.F) {
	f.Add([]byte(decidePolicy), []byte("seed"))
	f.Add([]byte(`{"version":1,"default":"allow","rules":[{"ops":["SOCKET"],"action":"deny","when":{"socket.type":{"range":[1,3]}}}]}`), []byte{1, 2, 3})
	files, _ := filepath.Glob("../examples/*.yaml")
	prof, _ := filepath.Glob("../profiles/*.yaml")
	for _, file := range append(files, prof...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, []byte(file))
		}
	}
	f.Fuzz(func(t *testing.T, data, seed []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		p.Lint()
		p.Needs()
		for _, r := range fuzzRequests(seed) {
			d := p.Decide(r)
			if d.Rule >= 0 && (d.Rule >= len(p.Rules) || !p.Rules[d.Rule].Names(r.Op)) {
				t.Fatalf("decision %+v for %s names a rule that does not apply", d, r)
			}
			if d.Rule < 0 && d.Allow != (p.Default == Allow) {
				t.Fatalf("default decision %+v, default is %s", d, p.Default)
			}
			_ = r.Ctx(binary.LittleEndian)
		}
	})
}

// FuzzParseCases checks the cases parser never panics and requests it
// accepts print and decide.
func FuzzParseCases(f *testing.F) {
	if data, err := os.ReadFile("../examples/web-server.cases.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("cases:\n  - {name: x, request: {op: SOCKET, socket.family: AF_INET}, expect: allow, rule: 1}\n"))
	p := &Policy{Version: 1, Default: Deny}
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := ParseCases(data, "fuzz.cases.yaml")
		if err != nil {
			return
		}
		for _, c := range cases {
			_ = c.Request.String()
			c.Check(p)
		}
	})
}

// FuzzParseRequest checks ParseRequest never panics and that what it
// accepts prints back to an equal request.
func FuzzParseRequest(f *testing.F) {
	f.Add("op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK")
	f.Add("op=CONNECT addr=::1 port=443")
	f.Add("op=OPENAT2 flags=O_CREAT|O_RDWR mode=0o644 resolve=RESOLVE_BENEATH user_data=7 sqe_flags=IOSQE_ASYNC")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequest(s)
		if err != nil {
			return
		}
		back, err := ParseRequest(r.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, r.String(), err)
		}
		if r.Connect.Family != AFInet && r.Connect.Family != AFInet6 {
			// String does not print addresses of other families.
			back.Connect.Addr, r.Connect.Addr = [16]byte{}, [16]byte{}
		}
		if info, _ := r.Op.Info(); info.View != abi.ViewConnect {
			r.Connect = abi.ConnectData{}
		}
		if info, _ := r.Op.Info(); info.View != abi.ViewSocket {
			r.Socket = abi.SocketData{}
		}
		if info, _ := r.Op.Info(); info.View != abi.ViewOpen {
			r.Open = abi.OpenData{}
		}
		if back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, r, r.String(), back)
		}
	})
}
