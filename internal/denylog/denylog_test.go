package denylog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/uringtrace"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

const pol = `version: 1
default: deny
rules:
  - name: tcp sockets
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: SOCK_STREAM
  - name: no raw sockets
    ops: [SOCKET]
    action: deny
    when:
      socket.type: SOCK_RAW
  - ops: [READ, NOP]
    action: allow
`

func TestEntry(t *testing.T) {
	p, err := policy.Parse([]byte(pol), "web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	proc := t.TempDir()
	id := strings.Repeat("ab", 32)
	os.MkdirAll(filepath.Join(proc, "812"), 0o755)
	os.WriteFile(filepath.Join(proc, "812", "cgroup"), []byte("0::/system.slice/docker-"+id+".scope\n"), 0o644)
	at := time.Date(2026, 11, 30, 19, 50, 1, 123e6, time.UTC)
	a := &Attributor{Policy: p, Name: "web.yaml", Kernel: abi.Version{Major: 7, Minor: 3}, Now: func() time.Time { return at }, Proc: proc}
	sock := func(fam, typ, proto uint32) kernel.Request {
		return kernel.Request{Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: fam, Type: typ, Protocol: proto}}
	}
	tests := []struct {
		name string
		ev   uringtrace.Event
		text string
		rule string
	}{
		{
			name: "by the default",
			ev:   uringtrace.Event{Kind: uringtrace.Denied, PID: 812, TGID: 812, Comm: "postgres", Filter: true, Args: true, Req: sock(2, 2, 17)},
			text: `2026-11-30T19:50:01.123Z denied pid 812 (postgres) [container abababababab]: op=SOCKET socket.family=AF_INET socket.type=SOCK_DGRAM socket.protocol=IPPROTO_UDP: the default (deny) of web.yaml`,
			rule: "the default (deny)",
		},
		{
			name: "by a rule, from a SQPOLL thread",
			ev:   uringtrace.Event{Kind: uringtrace.Denied, PID: 815, TGID: 812, Comm: "iou-sqp-812", SQThread: true, Filter: true, Args: true, Req: sock(2, 3, 1)},
			text: `2026-11-30T19:50:01.123Z denied pid 812 tid 815 (iou-sqp-812) via SQPOLL [container abababababab]: op=SOCKET socket.family=AF_INET socket.type=SOCK_RAW socket.protocol=IPPROTO_ICMP: rule 2 ("no raw sockets") at line 10 of web.yaml`,
			rule: `rule 2 ("no raw sockets") at line 10`,
		},
		{
			name: "allowed by this policy: another filter",
			ev:   uringtrace.Event{Kind: uringtrace.Denied, PID: 900, TGID: 900, Comm: "x", Filter: true, Args: true, Req: kernel.Request{Op: abi.OpRead}},
			text: `2026-11-30T19:50:01.123Z denied pid 900 (x): op=READ (this policy allows it (rule 3 at line 15): another io_uring filter on the task or ring refused it)`,
		},
		{
			name: "arguments lost",
			ev:   uringtrace.Event{Kind: uringtrace.Denied, PID: 900, TGID: 900, Comm: "x", Filter: true, Req: kernel.Request{Op: abi.OpSocket}},
			text: `2026-11-30T19:50:01.123Z denied pid 900 (x): op=SOCKET: the default (deny) of web.yaml (the request's arguments were lost from the trace buffer; the rule is decided on zeros)`,
			rule: "the default (deny)",
		},
		{
			name: "ring restrictions",
			ev:   uringtrace.Event{Kind: uringtrace.Denied, PID: 900, TGID: 900, Comm: "x", Req: kernel.Request{Op: abi.OpSocket, UserData: 311}},
			text: `2026-11-30T19:50:01.123Z denied pid 900 (x): op=SOCKET user_data=0x137 (the ring's own restrictions (IORING_REGISTER_RESTRICTIONS, set by the program) refused it, not a filter)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := a.Entry(tt.ev)
			if got := e.Text(); got != tt.text {
				t.Errorf("text\n got %s\nwant %s", got, tt.text)
			}
			if e.Rule != tt.rule {
				t.Errorf("rule %q, want %q", e.Rule, tt.rule)
			}
			var buf bytes.Buffer
			if err := (Writer{W: &buf, JSON: true}).Write(e); err != nil {
				t.Fatal(err)
			}
			var back Entry
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back != e || strings.Count(buf.String(), "\n") != 1 {
				t.Errorf("JSON line %q does not read back (%v)", buf.String(), err)
			}
			if _, err := policy.ParseRequest(e.Request); err != nil {
				t.Errorf("request %q does not parse back: %v", e.Request, err)
			}
		})
	}
}

func TestCgroupV2(t *testing.T) {
	tests := []struct{ in, path, id string }{
		{"0::/user.slice/user-1000.slice/session-2.scope\n", "/user.slice/user-1000.slice/session-2.scope", ""},
		{"12:pids:/x\n0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + strings.Repeat("0f", 32) + ".scope\n",
			"/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + strings.Repeat("0f", 32) + ".scope", strings.Repeat("0f", 32)},
		{"1:name=systemd:/\n", "", ""},
	}
	for _, tt := range tests {
		p, id := CgroupV2(tt.in)
		if p != tt.path || id != tt.id {
			t.Errorf("CgroupV2(%q) = %q, %q; want %q, %q", tt.in, p, id, tt.path, tt.id)
		}
	}
}

func TestReadJSON(t *testing.T) {
	in := `{"time":"2026-11-30T19:50:01Z","pid":7,"tid":7,"comm":"a","op":"READ","request":"op=READ","denied_by":"filter"}

{"time":"2026-11-30T19:50:02Z","pid":8,"tid":9,"comm":"b","sqpoll":true,"op":"NOP","request":"op=NOP","denied_by":"restrictions"}
`
	log, err := ReadJSON(strings.NewReader(in))
	if err != nil || len(log) != 2 || log[0].PID != 7 || !log[1].SQPoll || log[1].By != "restrictions" {
		t.Errorf("ReadJSON = %+v, %v", log, err)
	}
	if _, err := ReadJSON(strings.NewReader("{}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line: error %v, want one naming line 2", err)
	}
}
