package learn

import (
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

func req(t *testing.T, s string) policy.Request {
	t.Helper()
	r, err := policy.ParseRequest(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return r
}

func record(t *testing.T, k abi.Version, reqs ...string) *Recording {
	t.Helper()
	rec := New()
	rec.Kernel = k
	for _, s := range reqs {
		rec.Add(req(t, s), false)
	}
	return rec
}

var (
	v71 = abi.Version{Major: 7, Minor: 1}
	v73 = abi.Version{Major: 7, Minor: 3}
)

// checkPolicy validates p and fails on lint findings other than the
// allowed codes.
func checkPolicy(t *testing.T, p *policy.Policy, allowedLint ...string) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("generated policy does not validate: %v", err)
	}
	for _, d := range p.Lint() {
		ok := false
		for _, c := range allowedLint {
			ok = ok || d.Code == c
		}
		if !ok {
			t.Errorf("lint: %s", d)
		}
	}
}

// The generalisation rules, one scenario each: what was recorded, and
// requests the policy must allow and deny.
func TestGeneralisation(t *testing.T) {
	tests := []struct {
		name     string
		kernel   abi.Version
		opts     Options
		recorded []string
		allow    []string
		deny     []string
		lint     []string
	}{
		{
			name:     "opcodes without data: exactly those seen",
			kernel:   v73,
			recorded: []string{"op=READ", "op=READ", "op=WRITE", "op=NOP", "op=POLL_ADD sqe_flags=IOSQE_ASYNC"},
			allow:    []string{"op=READ", "op=WRITE user_data=7", "op=NOP sqe_flags=IOSQE_IO_LINK", "op=POLL_ADD"},
			deny:     []string{"op=ACCEPT", "op=URING_CMD", "op=RENAMEAT", "op=SOCKET family=AF_INET type=SOCK_STREAM", "op=OPENAT flags=O_RDONLY|O_LARGEFILE"},
		},
		{
			name:   "sockets: the exact triples, SOCK_NONBLOCK and SOCK_CLOEXEC aside",
			kernel: v73,
			recorded: []string{
				"op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=IPPROTO_TCP",
				"op=SOCKET family=AF_INET6 type=SOCK_DGRAM protocol=0",
			},
			allow: []string{
				"op=SOCKET family=AF_INET type=SOCK_STREAM protocol=IPPROTO_TCP",
				"op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_CLOEXEC protocol=IPPROTO_TCP",
				"op=SOCKET family=AF_INET6 type=SOCK_DGRAM protocol=0",
			},
			deny: []string{
				"op=SOCKET family=AF_INET type=SOCK_STREAM protocol=0",
				"op=SOCKET family=AF_INET6 type=SOCK_STREAM protocol=IPPROTO_TCP",
				"op=SOCKET family=AF_INET type=SOCK_DGRAM protocol=0",
				"op=SOCKET family=AF_INET type=SOCK_RAW protocol=IPPROTO_TCP",
				"op=SOCKET family=AF_PACKET type=SOCK_STREAM protocol=IPPROTO_TCP",
			},
		},
		{
			name:     "read-only opens: no write, create, truncate, append or tmpfile",
			kernel:   v73,
			recorded: []string{"op=OPENAT flags=O_RDONLY|O_CLOEXEC|O_LARGEFILE", "op=OPENAT flags=O_RDONLY|O_DIRECTORY|O_LARGEFILE"},
			allow: []string{
				"op=OPENAT flags=O_RDONLY|O_LARGEFILE",
				"op=OPENAT flags=O_RDONLY|O_NOFOLLOW|O_LARGEFILE", // not risky: allowed though not seen
				"op=OPENAT flags=O_PATH",
			},
			deny: []string{
				"op=OPENAT flags=O_WRONLY|O_LARGEFILE",
				"op=OPENAT flags=O_RDWR|O_LARGEFILE",
				"op=OPENAT flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o644",
				"op=OPENAT flags=O_RDONLY|O_TRUNC|O_LARGEFILE",
				"op=OPENAT flags=O_WRONLY|O_APPEND|O_LARGEFILE",
				"op=OPENAT flags=O_TMPFILE|O_RDWR|O_LARGEFILE mode=0o600",
				"op=OPENAT2 flags=O_RDONLY|O_LARGEFILE",
			},
		},
		{
			name:     "creating opens: the bits seen, no set-id modes",
			kernel:   v73,
			recorded: []string{"op=OPENAT2 flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o644 resolve=RESOLVE_BENEATH"},
			allow: []string{
				"op=OPENAT2 flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o600",
				"op=OPENAT2 flags=O_RDONLY|O_LARGEFILE",
			},
			deny: []string{
				"op=OPENAT2 flags=O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE mode=0o644",
				"op=OPENAT2 flags=O_RDWR|O_CREAT|O_LARGEFILE mode=0o644",
				"op=OPENAT2 flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o4755",
				"op=OPENAT flags=O_RDONLY|O_LARGEFILE",
			},
			lint: []string{"risky-allow"},
		},
		{
			name:   "OPENAT and OPENAT2 alike share a rule, unlike keep their own",
			kernel: v73,
			recorded: []string{"op=OPENAT flags=O_RDONLY|O_LARGEFILE", "op=OPENAT2 flags=O_RDONLY|O_LARGEFILE",
				"op=OPENAT flags=O_WRONLY|O_APPEND|O_LARGEFILE"},
			allow: []string{"op=OPENAT flags=O_WRONLY|O_APPEND|O_LARGEFILE", "op=OPENAT2 flags=O_RDONLY|O_LARGEFILE"},
			deny:  []string{"op=OPENAT2 flags=O_WRONLY|O_APPEND|O_LARGEFILE", "op=OPENAT flags=O_RDWR|O_LARGEFILE"},
		},
		{
			name:   "connects on 7.2+: the destinations seen, exactly",
			kernel: v73,
			recorded: []string{
				"op=CONNECT addr=10.0.0.1 port=5432", "op=CONNECT addr=10.0.0.2 port=5432",
				"op=CONNECT addr=10.0.0.1 port=6379", "op=CONNECT addr=::1 port=8080",
				"op=CONNECT family=AF_UNIX",
			},
			allow: []string{"op=CONNECT addr=10.0.0.1 port=5432", "op=CONNECT addr=10.0.0.2 port=5432",
				"op=CONNECT addr=10.0.0.1 port=6379", "op=CONNECT addr=::1 port=8080", "op=CONNECT family=AF_UNIX"},
			deny: []string{"op=CONNECT addr=10.0.0.2 port=6379", "op=CONNECT addr=10.0.0.3 port=5432",
				"op=CONNECT addr=::2 port=8080", "op=CONNECT addr=::1 port=8081", "op=CONNECT addr=::ffff:10.0.0.1 port=5432",
				"op=CONNECT family=AF_NETLINK"},
			lint: []string{"needs-7.2"},
		},
		{
			name:     "connects widened to networks",
			kernel:   v73,
			opts:     Options{Network4: 24, Network6: 64},
			recorded: []string{"op=CONNECT addr=10.0.0.1 port=5432", "op=CONNECT addr=10.0.0.2 port=5432", "op=CONNECT addr=fd00::1 port=443"},
			allow:    []string{"op=CONNECT addr=10.0.0.200 port=5432", "op=CONNECT addr=fd00::ffff port=443"},
			deny:     []string{"op=CONNECT addr=10.0.1.1 port=5432", "op=CONNECT addr=10.0.0.200 port=5433", "op=CONNECT addr=fd00:0:0:1::1 port=443"},
			lint:     []string{"needs-7.2"},
		},
		{
			name:     "connects for 7.1: unconditional, the destinations in the comment",
			kernel:   v71,
			recorded: []string{"op=CONNECT addr=10.0.0.1 port=5432"},
			allow:    []string{"op=CONNECT"},
			deny:     []string{"op=SOCKET family=AF_INET type=SOCK_STREAM"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := record(t, tt.kernel, tt.recorded...)
			p := rec.Policy(tt.opts)
			checkPolicy(t, p, tt.lint...)
			for _, s := range tt.recorded {
				if d := p.Decide(req(t, s)); !d.Allow {
					t.Errorf("recorded request %s denied by %s", s, p.Describe(d))
				}
			}
			for _, s := range tt.allow {
				if d := p.Decide(req(t, s)); !d.Allow {
					t.Errorf("%s denied by %s, want allowed", s, p.Describe(d))
				}
			}
			for _, s := range tt.deny {
				if d := p.Decide(req(t, s)); d.Allow {
					t.Errorf("%s allowed by %s, want denied", s, p.Describe(d))
				}
			}
			// Written as YAML and parsed, then read back for --merge,
			// it gives a recording whose policy decides the same.
			y, err := p.YAML()
			if err != nil {
				t.Fatalf("YAML: %v", err)
			}
			parsed, err := policy.Parse(y, "recorded.yaml")
			if err != nil {
				t.Fatalf("the written policy does not parse: %v\n%s", err, y)
			}
			j, err := p.JSON()
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if pj, err := policy.Parse(j, "recorded.json"); err != nil || len(pj.Rules) != len(p.Rules) {
				t.Fatalf("the JSON policy does not parse back: %v\n%s", err, j)
			}
			back, err := FromPolicy(parsed)
			if err != nil {
				t.Fatalf("FromPolicy: %v", err)
			}
			q := back.Policy(Options{Kernel: tt.kernel, Network4: tt.opts.Network4, Network6: tt.opts.Network6})
			for _, s := range append(append(append([]string{}, tt.recorded...), tt.allow...), tt.deny...) {
				if a, b := p.Decide(req(t, s)), q.Decide(req(t, s)); a.Allow != b.Allow {
					t.Errorf("read back: %s: %v, was %v", s, b.Allow, a.Allow)
				}
			}
		})
	}
}

func TestCommentsSayWhatWasSeen(t *testing.T) {
	rec := record(t, v73, "op=READ", "op=READ", "op=READ", "op=WRITE",
		"op=SOCKET family=AF_INET type=SOCK_STREAM protocol=IPPROTO_TCP",
		"op=OPENAT flags=O_RDONLY|O_LARGEFILE")
	rec.Add(req(t, "op=READ sqe_flags=IOSQE_FIXED_FILE"), true)
	rec.AddRegister(abi.RegOpProbe)
	rec.AddRegister(abi.RegOpProbe)
	rec.Commands = []string{"fio job.fio"}
	p := rec.Policy(Options{})
	var all []string
	for _, r := range p.Rules {
		all = append(all, r.Name+": "+r.Comment)
	}
	text := strings.Join(all, "\n") + "\n" + p.Register.Comment + "\n" + p.Comment
	for _, want := range []string{
		"reads and writes: I/O on descriptors the program already has; seen: READ 4 times (1 by a SQPOLL thread; with IOSQE_FIXED_FILE), WRITE once",
		"AF_INET SOCK_STREAM sockets: SOCKET(AF_INET, SOCK_STREAM, IPPROTO_TCP) seen once",
		"OPENAT seen once, all read-only; refused because never seen: O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, __O_TMPFILE",
		"seen: REGISTER_PROBE 2 times",
		"fio job.fio",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("comments lack %q:\n%s", want, text)
		}
	}
	if p.Default != policy.Deny {
		t.Error("default is not deny")
	}
}

func TestRegisterSection(t *testing.T) {
	rec := New()
	rec.Kernel = v73
	rec.AddRegister(abi.RegOpProbe)
	rec.AddRegister(abi.RegisterOp(abi.RegisterBPFFilter))
	p := rec.Policy(Options{})
	if p.Register == nil || len(p.Register.Allow) != 2 || !p.RegisterAllows(abi.RegOpProbe) || p.RegisterAllows(abi.RegOpSyncCancel) {
		t.Errorf("register section %+v: want exactly PROBE and BPF_FILTER", p.Register)
	}
	none := New().Policy(Options{})
	if none.Register == nil || len(none.Register.Allow) != 0 {
		t.Errorf("nothing seen: register %+v, want an empty allow list", none.Register)
	}
	blind := New()
	blind.RegisterSeen = false
	if p := blind.Policy(Options{}); p.Register != nil {
		t.Errorf("register calls not recorded: register %+v, want no section", p.Register)
	}
}

func TestMergeIsTheUnion(t *testing.T) {
	a := record(t, v73, "op=READ", "op=SOCKET family=AF_INET type=SOCK_STREAM protocol=0", "op=OPENAT flags=O_RDONLY|O_LARGEFILE", "op=CONNECT addr=10.0.0.1 port=80")
	b := record(t, v73, "op=WRITE", "op=SOCKET family=AF_UNIX type=SOCK_DGRAM protocol=0", "op=OPENAT flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o600", "op=CONNECT addr=10.0.0.2 port=443")
	a.AddRegister(abi.RegOpProbe)
	b.AddRegister(abi.RegisterOp(2))
	pa, pb := a.Policy(Options{}), b.Policy(Options{})
	// --merge: the earlier policy, read back, plus the new run.
	m, err := FromPolicy(pa)
	if err != nil {
		t.Fatal(err)
	}
	m.Merge(b)
	pm := m.Policy(Options{})
	checkPolicy(t, pm, "risky-allow", "needs-7.2")
	probe := []string{
		"op=READ", "op=WRITE", "op=SOCKET family=AF_INET type=SOCK_STREAM protocol=0", "op=SOCKET family=AF_UNIX type=SOCK_DGRAM protocol=0",
		"op=SOCKET family=AF_INET type=SOCK_DGRAM protocol=0", "op=OPENAT flags=O_RDONLY|O_LARGEFILE",
		"op=OPENAT flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o600", "op=OPENAT flags=O_RDWR|O_LARGEFILE",
		"op=CONNECT addr=10.0.0.1 port=80", "op=CONNECT addr=10.0.0.2 port=443", "op=CONNECT addr=10.0.0.1 port=443",
		"op=ACCEPT",
	}
	for _, s := range probe {
		r := req(t, s)
		want := pa.Decide(r).Allow || pb.Decide(r).Allow
		if got := pm.Decide(r).Allow; got != want {
			t.Errorf("%s: merged policy allows=%v, want %v (the union)", s, got, want)
		}
	}
	for _, op := range []abi.RegisterOp{abi.RegOpProbe, abi.RegisterOp(2)} {
		if !pm.RegisterAllows(op) {
			t.Errorf("merged register section lacks %s", op)
		}
	}
	if pm.Rules[0].Comment == "" || !strings.Contains(pm.Rules[0].Comment, "READ once") {
		t.Errorf("counts lost in the merge: %q", pm.Rules[0].Comment)
	}
}

func TestFromPolicyRefusesOtherShapes(t *testing.T) {
	tests := []struct{ src, want string }{
		{"version: 1\ndefault: allow\n", "default: allow"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [READ]\n    action: deny\n", "a deny rule"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n", "would allow every SOCKET"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_INET, AF_INET6]\n", "must test socket.family"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [OPENAT]\n    action: allow\n    when:\n      open.flags: {has_any: O_CREAT}\n", "only has_none"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [CONNECT]\n    action: allow\n    when:\n      connect.port: {range: [1, 100]}\n", "connect.port range"},
		{"version: 1\ndefault: deny\nrules:\n  - ops: [READ]\n    action: allow\n    when:\n      user_data: 7\n", "conditions on READ"},
	}
	for _, tt := range tests {
		p, err := policy.Parse([]byte(tt.src), "p.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		_, err = FromPolicy(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "p.yaml:") {
			t.Errorf("%q: error %v, want one at p.yaml:... saying %q", tt.src, err, tt.want)
		}
	}
}
