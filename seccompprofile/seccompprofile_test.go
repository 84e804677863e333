package seccompprofile

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

const (
	mobyFile   = "../testdata/seccomp/moby-default.json"
	podmanFile = "../testdata/seccomp/podman-seccomp.json"
	debianFile = "../testdata/seccomp/debian-containers-common.json"
)

func load(t testing.TB, path string) *Profile {
	t.Helper()
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTable: one mapping per opcode of Linux 7.3, in order; every opcode
// without system calls has a decision and a reason; every system call
// named is one Docker's and Podman's profiles name (a typo would be a
// system call nobody allows); fields exist for the opcode.
func TestTable(t *testing.T) {
	tab := Table()
	ops := abi.Opcodes()
	if len(tab) != len(ops) {
		t.Fatalf("%d mappings for %d opcodes", len(tab), len(ops))
	}
	known := map[string]bool{}
	for _, f := range []string{mobyFile, podmanFile} {
		for _, e := range load(t, f).Syscalls {
			for _, n := range e.Names {
				known[n] = true
			}
		}
	}
	for i, m := range tab {
		if m.Op != ops[i].Op {
			t.Errorf("mapping %d is for %v, want %v", i, m.Op, ops[i].Op)
		}
		if len(m.Syscalls) == 0 && m.Why == "" {
			t.Errorf("%v: no system call and no reason", m.Op)
		}
		if len(m.Syscalls) > 0 && m.Why != "" {
			t.Errorf("%v: system calls and a fixed decision", m.Op)
		}
		for _, g := range m.Syscalls {
			if len(g) == 0 || (m.Fields != nil && (len(m.Syscalls) != 1 || len(g) != 1)) {
				t.Errorf("%v: group %v (opcodes with fields have one call)", m.Op, g)
			}
		}
		for _, s := range m.Calls() {
			if !known[s] {
				t.Errorf("%v: system call %q is named by neither Docker's nor Podman's profile", m.Op, s)
			}
		}
		for idx, f := range m.Fields {
			if idx < 0 || idx > 5 || !policy.FieldApplies(m.Op, f) {
				t.Errorf("%v: argument %d as %s", m.Op, idx, f)
			}
		}
		if got, ok := Lookup(m.Op); !ok || got.Op != m.Op {
			t.Errorf("Lookup(%v)", m.Op)
		}
	}
	// The opcodes named in the task: each stands for its system call.
	want := map[abi.Opcode]string{abi.OpSocket: "socket", abi.OpConnect: "connect", abi.OpOpenat: "openat",
		abi.OpOpenat2: "openat2", abi.OpAccept: "accept4", abi.OpBind: "bind", abi.OpListen: "listen",
		abi.OpSend: "sendto", abi.OpSendmsg: "sendmsg", abi.OpRecv: "recvfrom", abi.OpRecvmsg: "recvmsg",
		abi.OpRead: "pread64", abi.OpWrite: "pwritev2", abi.OpFsync: "fsync", abi.OpStatx: "statx",
		abi.OpRenameat: "renameat2", abi.OpUnlinkat: "unlinkat", abi.OpMkdirat: "mkdirat",
		abi.OpSymlinkat: "symlinkat", abi.OpLinkat: "linkat", abi.OpSetxattr: "setxattr",
		abi.OpFgetxattr: "fgetxattr", abi.OpSplice: "splice", abi.OpTee: "tee", abi.OpFtruncate: "ftruncate",
		abi.OpFallocate: "fallocate", abi.OpMadvise: "madvise", abi.OpFadvise: "fadvise64",
		abi.OpEpollCtl: "epoll_ctl", abi.OpFutexWait: "futex_wait", abi.OpWaitid: "waitid",
		abi.OpPipe: "pipe2", abi.OpClose: "close"}
	for op, call := range want {
		m, _ := Lookup(op)
		if !contains(m.Calls(), call) {
			t.Errorf("%v stands for %v, not %s", op, m.Syscalls, call)
		}
	}
	for _, op := range []abi.Opcode{abi.OpUringCmd, abi.OpUringCmd128} {
		if m, _ := Lookup(op); m.Fixed != policy.Deny {
			t.Errorf("%v is not denied", op)
		}
	}
}

// docCalls writes m's system calls as docs/seccomp.md does: alternatives
// with "or", groups needed jointly with "and".
func docCalls(m Mapping) string {
	var gs []string
	for _, g := range m.Syscalls {
		x := strings.Join(g, " or ")
		if len(g) > 1 && len(m.Syscalls) > 1 {
			x = "(" + x + ")"
		}
		gs = append(gs, x)
	}
	return strings.Join(gs, " and ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTableDoc: docs/seccomp.md's table is Table().
func TestTableDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/seccomp.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| opcode") || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) >= 2 {
			rows = append(rows, strings.TrimSpace(cells[0])+" | "+strings.TrimSpace(cells[1])+" | "+strings.TrimSpace(strings.Join(cells[2:], "|")))
		}
	}
	var want []string
	for _, m := range Table() {
		calls := docCalls(m)
		if len(m.Syscalls) == 0 {
			calls = "none: " + m.Fixed.String()
		}
		var idx []int
		for i := range m.Fields {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var seen []string
		for _, i := range idx {
			seen = append(seen, fmt.Sprintf("arg %d: `%s`", i, m.Fields[i]))
		}
		want = append(want, fmt.Sprintf("%s | %s | %s", m.Op, calls, strings.Join(seen, ", ")))
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/seccomp.md table:\n%s\nTable():\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// TestParse: the real profiles parse; errors carry their position.
func TestParse(t *testing.T) {
	m := load(t, mobyFile)
	if m.DefaultAction != "SCMP_ACT_ERRNO" || m.DefaultErrno != 1 || len(m.Syscalls) < 30 {
		t.Errorf("moby: %s %d %d entries", m.DefaultAction, m.DefaultErrno, len(m.Syscalls))
	}
	if p := load(t, podmanFile); p.DefaultErrno != 38 {
		t.Errorf("podman default errno %d", p.DefaultErrno)
	}
	tests := []struct{ src, want string }{
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscals": []}`, `x.json:1:37: unknown key "syscals" in profile; did you mean syscalls?`},
		{`{"defaultAction": "SCMP_ACT_ERNO"}`, `x.json:1:19: unknown action "SCMP_ACT_ERNO"; did you mean SCMP_ACT_ERRNO?`},
		{"{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ERRNO\",\n  \"args\": [{\"index\": 7, \"value\": 40, \"op\": \"SCMP_CMP_EQ\"}]}]}",
			"x.json:3:22: index 7: system calls have arguments 0 to 5"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQQ"}]}]}`,
			`unknown comparison "SCMP_CMP_EQQ"; did you mean SCMP_CMP_EQ?`},
		{`{"syscalls": []}`, "x.json:1:1: missing defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`, "syscall entry names no system call"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]}`, "not MAJOR.MINOR"},
		{`[`, "not valid JSON"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "x.json")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
}

// socketCall is socket(family, type, protocol) as seccomp sees it.
func socketCall(fam, typ, proto uint64) Call {
	return Call{Name: "socket", Args: [6]uint64{fam, typ, proto}, Known: [6]bool{true, true, true}}
}

// TestDecide: the real profiles' socket rules, capabilities, and the most
// restrictive entry deciding.
func TestDecide(t *testing.T) {
	moby, podman := load(t, mobyFile), load(t, podmanFile)
	const vsock, alg, netlink, inet, audit = 40, 38, 16, 2, 9
	tests := []struct {
		name string
		p    *Profile
		o    Options
		c    Call
		want Verdict
	}{
		{"docker inet", moby, Options{}, socketCall(inet, 1, 0), Allowed},
		{"docker vsock", moby, Options{}, socketCall(vsock, 1, 0), Denied},
		{"docker alg", moby, Options{}, socketCall(alg, 5, 0), Denied},
		{"docker nfc", moby, Options{}, socketCall(39, 1, 0), Allowed},
		{"docker io_uring_setup", moby, Options{}, Call{Name: "io_uring_setup"}, Denied},
		{"docker bpf without caps", moby, Options{}, Call{Name: "bpf"}, Denied},
		{"docker bpf with CAP_BPF", moby, Options{Caps: []string{"bpf"}}, Call{Name: "bpf"}, Allowed},
		{"docker clone3 without SYS_ADMIN", moby, Options{}, Call{Name: "clone3"}, Denied},
		{"docker ptrace on 7.0 (minKernel 4.8)", moby, Options{}, Call{Name: "ptrace"}, Allowed},
		{"docker ptrace on 4.4", moby, Options{Kernel: abi.Version{Major: 4, Minor: 4}}, Call{Name: "ptrace"}, Denied},
		{"docker arch_prctl on amd64", moby, Options{Arch: "amd64"}, Call{Name: "arch_prctl"}, Allowed},
		{"docker arch_prctl on arm64", moby, Options{Arch: "arm64"}, Call{Name: "arch_prctl"}, Denied},
		{"docker clone unseen flags", moby, Options{Arch: "amd64"}, Call{Name: "clone"}, Unknown},
		{"podman vsock", podman, Options{Runtime: Podman}, socketCall(vsock, 1, 0), Denied},
		{"podman vsock with AUDIT_WRITE", podman, Options{Caps: []string{"CAP_AUDIT_WRITE"}}, socketCall(vsock, 1, 0), Denied},
		{"podman netlink audit", podman, Options{Runtime: Podman}, socketCall(netlink, 3, audit), Denied},
		{"podman netlink audit with AUDIT_WRITE", podman, Options{Runtime: Docker}, socketCall(netlink, 3, audit), Allowed},
		{"podman netlink route", podman, Options{Runtime: Podman}, socketCall(netlink, 3, 0), Allowed},
		{"podman inet", podman, Options{Runtime: Podman}, socketCall(inet, 1, 6), Allowed},
		{"podman unknown syscall", podman, Options{Runtime: Podman}, Call{Name: "no_such_call"}, Denied},
	}
	for _, tt := range tests {
		a, err := tt.p.Decide(tt.c, tt.o)
		if err != nil {
			t.Fatal(err)
		}
		if a.Verdict != tt.want {
			t.Errorf("%s: %v by %v, want %v", tt.name, a.Verdict, a.Entry, tt.want)
		}
	}
	if _, err := moby.Decide(Call{Name: "read"}, Options{Runtime: "lxc"}); err == nil {
		t.Error("unknown runtime accepted")
	}
}

// socketRequests are SOCKET requests of every family and protocol 0-63,
// of the common types, with and without SOCK_NONBLOCK|SOCK_CLOEXEC.
func socketRequests() []policy.Request {
	var out []policy.Request
	for fam := uint32(0); fam < 64; fam++ {
		for _, typ := range []uint32{1, 2, 3, 5, 10, 1 | policy.SockTypeIgnore} {
			for proto := uint32(0); proto < 64; proto++ {
				out = append(out, policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: typ, Protocol: proto}})
			}
		}
	}
	return out
}

// TestDeriveReal: the policies derived from Docker's and Podman's profiles
// decide every opcode as the profile decides its system calls: SOCKET for
// every family and protocol 0-63, the others whatever their arguments;
// the io_uring system calls' denial does not make them deny everything.
func TestDeriveReal(t *testing.T) {
	for _, tt := range []struct {
		file string
		o    Options
		deny []uint32 // socket families denied (any type and protocol)
	}{
		{mobyFile, Options{}, []uint32{38, 40}},
		{mobyFile, Options{Runtime: Podman}, []uint32{38, 40}},
		{podmanFile, Options{Runtime: Podman}, []uint32{40}},
		{podmanFile, Options{}, []uint32{40}},
	} {
		prof := load(t, tt.file)
		d, err := prof.Derive(tt.o)
		if err != nil {
			t.Fatal(err)
		}
		pol := d.Policy
		if err := pol.Validate(); err != nil {
			t.Fatal(err)
		}
		name := tt.file + "/" + d.Options.Runtime
		entries, _ := prof.Effective(d.Options)
		n := 0
		for _, r := range socketRequests() {
			want := decide(entries, prof.DefaultAction, socketCall(uint64(r.Socket.Family), uint64(r.Socket.Type), uint64(r.Socket.Protocol)))
			if got := pol.Decide(r).Allow; got != (want.Verdict == Allowed) {
				t.Errorf("%s: %s: policy allow=%v, profile %v by %v", name, r, got, want.Verdict, want.Entry)
				if n++; n > 10 {
					t.FailNow()
				}
			}
		}
		for _, fam := range tt.deny {
			r := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: 1}}
			if pol.Decide(r).Allow {
				t.Errorf("%s: family %d allowed", name, fam)
			}
		}
		for _, m := range Table() {
			r := policy.Request{Op: m.Op}
			allow := pol.Decide(r).Allow
			switch {
			case len(m.Syscalls) == 0:
				if allow != (m.Fixed == policy.Allow) {
					t.Errorf("%s: %v allow=%v, table says %v", name, m.Op, allow, m.Fixed)
				}
			case m.Op == abi.OpSocket:
			default:
				if !allow {
					t.Errorf("%s: %v denied, though the profile allows %v", name, m.Op, m.Syscalls)
				}
			}
		}
		if bs, err := Check(prof, pol, tt.o); err != nil || len(bs) != 0 {
			t.Errorf("%s: the derived policy has bypasses: %v %v", name, err, bs)
		}
	}
}

// TestDeriveNotes: what filters cannot see is handled safely and said.
func TestDeriveNotes(t *testing.T) {
	src := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
 {"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 3, "value": 24, "op": "SCMP_CMP_GT"}]},
 {"names": ["connect"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 16, "op": "SCMP_CMP_EQ"}]},
 {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 64, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 64}, {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
 {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 2048, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 2048}]},
 {"names": ["read", "readv", "preadv2"], "action": "SCMP_ACT_KILL"},
 {"names": ["futex_wait", "futex_wake", "futex_waitv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
 {"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"], "action": "SCMP_ACT_ERRNO"}
]}`
	prof, err := Parse([]byte(src), "n.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := prof.Derive(Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol := d.Policy
	var notes []string
	for _, n := range d.Notes {
		notes = append(notes, n.String())
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{
		"n.json:2:2: OPENAT2 (openat2): denied: the profile denies openat2 when arg3 > 24, and io_uring filters do not see argument 3",
		"n.json:3:2: CONNECT (connect): denied: the profile denies connect when arg2 == 16",
		"n.json:4:2: OPENAT (openat): the profile denies openat when arg2 & 0x40 == 0x40 and arg0 == 3; io_uring filters do not see argument 0, so OPENAT is denied without that condition",
		"SOCKET (socket): arg1 & 0x800 == 0x800: socket.type in a policy never carries SOCK_NONBLOCK or SOCK_CLOEXEC; the condition is dropped",
		"n.json:6:2: READ (read): denied: the profile denies read (SCMP_ACT_KILL)",
		"n.json:6:2: READ (readv): denied: the profile denies readv (SCMP_ACT_KILL)",
		"n.json:6:2: READ (preadv2): denied: the profile denies preadv2 (SCMP_ACT_KILL)",
		"n.json:7:2: FUTEX_WAITV (futex_waitv): denied: the profile denies futex_waitv (SCMP_ACT_ERRNO)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no note %q in\n%s", want, all)
		}
	}
	decide := func(s string) bool {
		r, err := policy.ParseRequest(s)
		if err != nil {
			t.Fatal(err)
		}
		return pol.Decide(r).Allow
	}
	for s, want := range map[string]bool{
		"op=OPENAT2":                            false,
		"op=CONNECT":                            false,
		"op=OPENAT flags=O_CREAT":               false,
		"op=OPENAT flags=O_RDONLY":              true,
		"op=SOCKET family=AF_INET":              false, // the dropped condition denies every socket
		"op=READ":                               false,
		"op=READ_FIXED":                         false,
		"op=READV":                              false,
		"op=FUTEX_WAKE":                         true, // futex(2) is allowed
		"op=FUTEX_WAITV":                        false,
		"op=WRITE":                              true,
		"op=NOP":                                true,
		"op=URING_CMD":                          false,
		"op=FUTEX_WAIT":                         true,
		"op=RECVMSG user_data=7 sqe_flags=0x10": true,
	} {
		if got := decide(s); got != want {
			t.Errorf("%s: allow=%v, want %v", s, got, want)
		}
	}
}

// TestCheck: a policy that allows AF_VSOCK sockets bypasses Docker's
// profile; ringfence's default profile does not; both sides are named.
func TestCheck(t *testing.T) {
	moby := load(t, mobyFile)
	pol := mustPolicy(t, `version: 1
default: deny
rules:
  - name: no packet sockets
    ops: [SOCKET]
    action: deny
    when:
      socket.family: AF_PACKET
  - name: any socket
    ops: [SOCKET]
    action: allow
  - name: io
    ops: [READ, WRITE, NOP]
    action: allow
`)
	bs, err := Check(moby, pol, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.String())
		if b.Rule != 1 || b.Syscall != "socket" || b.Verdict != Denied || b.Entry != nil {
			t.Errorf("unexpected bypass %s", b)
		}
	}
	if len(bs) != 1 || !strings.Contains(got[0], `allowed by rule 2 ("any socket") at line 9, but the seccomp profile denies socket: defaultAction SCMP_ACT_ERRNO (../testdata/seccomp/moby-default.json:2:19)`) {
		t.Errorf("bypasses:\n%s", strings.Join(got, "\n"))
	}
	var fams []uint32
	for _, r := range bs[0].Examples {
		fams = append(fams, r.Socket.Family)
	}
	if fmt.Sprint(fams) != "[38 40]" || !strings.Contains(got[0], "(also socket.family=AF_VSOCK)") {
		t.Errorf("examples: families %v, want AF_ALG and AF_VSOCK: %s", fams, got[0])
	}

	// Just AF_VSOCK, by an allow with a condition.
	vsock := mustPolicy(t, "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_INET, AF_VSOCK]\n")
	bs, _ = Check(moby, vsock, Options{})
	if len(bs) != 1 || bs[0].Request.Socket.Family != 40 {
		t.Errorf("AF_VSOCK policy: %v", bs)
	}
	// Podman's own entry for AF_VSOCK is named.
	bs, _ = Check(load(t, podmanFile), vsock, Options{Runtime: Podman})
	if len(bs) != 1 || bs[0].Entry == nil || !strings.Contains(bs[0].ProfileRule, "SCMP_ACT_ERRNO socket when arg0 == 40 (../testdata/seccomp/podman-seccomp.json:960:3)") {
		t.Errorf("AF_VSOCK policy under Podman: %v", bs)
	}

	// A profile that denies a plain system call: the opcode is a bypass;
	// one that decides on an argument the ring hides: Unknown.
	prof, _ := Parse([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
 {"names": ["renameat2"], "action": "SCMP_ACT_ERRNO"},
 {"names": ["connect"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 16, "op": "SCMP_CMP_EQ"}]}]}`), "d.json")
	p := mustPolicy(t, "version: 1\ndefault: deny\nrules:\n  - ops: [RENAMEAT, CONNECT]\n    action: allow\n    when:\n      user_data: {gt: 100}\n")
	bs, _ = Check(prof, p, Options{})
	if len(bs) != 2 || bs[0].Request.Op != abi.OpConnect || bs[0].Verdict != Unknown || bs[1].Syscall != "renameat2" || bs[1].Request.UserData <= 100 {
		t.Errorf("plain bypasses: %v", bs)
	}
}

// TestBuiltinProfilesNoBypass: no built-in profile lets io_uring do what
// a kept runtime profile denies, for the runtime's default capabilities and
// every kernel with filters, so the runtime shim's default bypass check
// (refuse) accepts each of them under Docker's profile, upstream Podman's
// and the one Debian's Podman uses (which denies futex_waitv: "base"
// leaves FUTEX_WAITV out for it).
func TestBuiltinProfilesNoBypass(t *testing.T) {
	runtimes := []struct{ file, runtime string }{
		{mobyFile, Docker},
		{podmanFile, Podman},
		{debianFile, Podman},
	}
	names := profiles.Names()
	if len(names) < 6 {
		t.Fatalf("built-in profiles %v: want at least base, default, deny-all, network-server, postgresql, storage", names)
	}
	for _, rt := range runtimes {
		prof := load(t, rt.file)
		for _, name := range names {
			data, err := profiles.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			pol, err := policy.Parse(data, "profile "+name)
			if err != nil {
				t.Fatal(err)
			}
			for minor := 0; minor <= 3; minor++ {
				opts := Options{Runtime: rt.runtime, Kernel: abi.Version{Major: 7, Minor: minor}}
				bs, err := Check(prof, pol, opts)
				if err != nil {
					t.Fatalf("%s under %s: %v", name, rt.file, err)
				}
				for _, b := range bs {
					t.Errorf("profile %s under %s (%s, Linux 7.%d): %s", name, rt.file, rt.runtime, minor, b)
				}
			}
		}
	}
}

// randProfile returns a profile with random entries for socket and openat
// on arguments 0-3 (some that filters see, some they do not), with values
// from small pools so that conditions meet.
func randProfile(rng *rand.Rand) *Profile {
	acts := []Action{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_KILL"}
	ops := []Op{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe, OpMaskedEq}
	p := &Profile{File: "r.json", DefaultAction: acts[rng.Intn(2)]}
	for n := rng.Intn(6); n > 0; n-- {
		e := Entry{Names: []string{[]string{"socket", "openat"}[rng.Intn(2)]}, Action: acts[rng.Intn(len(acts))],
			Pos: policy.Pos{File: "r.json", Line: n}}
		for k := rng.Intn(3); k > 0; k-- {
			a := Arg{Index: rng.Intn(4), Op: ops[rng.Intn(len(ops))], Value: uint64(rng.Intn(6))}
			if rng.Intn(8) == 0 {
				a.Value |= policy.SockTypeIgnore & 0o4000
			}
			if a.Op == OpMaskedEq {
				a.Value = uint64(rng.Intn(8)) | uint64(rng.Intn(2))<<6
				a.ValueTwo = a.Value & uint64(rng.Intn(256))
			}
			e.Args = append(e.Args, a)
		}
		p.Syscalls = append(p.Syscalls, e)
	}
	return p
}

// TestDeriveProperty: on random profiles, the derived policy never allows
// a SOCKET or OPENAT request whose system call the profile does not
// allow for certain, and decides exactly as the profile where Derive
// wrote no note for the opcode.
func TestDeriveProperty(t *testing.T) {
	seed := rand.Int63()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	exact, safe := 0, 0
	for iter := 0; iter < 500; iter++ {
		prof := randProfile(rng)
		d, err := prof.Derive(Options{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		noted := map[abi.Opcode]bool{}
		for _, n := range d.Notes {
			noted[n.Op] = true
		}
		for k := 0; k < 200; k++ {
			var r policy.Request
			v := func() uint64 { return uint64(rng.Intn(8)) | uint64(rng.Intn(2))<<6 }
			if rng.Intn(2) == 0 {
				r = policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: uint32(v()), Type: uint32(v()), Protocol: uint32(v())}}
				if rng.Intn(3) == 0 {
					r.Socket.Type |= 0o4000
				}
			} else {
				r = policy.Request{Op: abi.OpOpenat, Open: abi.OpenData{Flags: v() | policy.OpenFlagsIgnore, Mode: v()}}
			}
			m, _ := Lookup(r.Op)
			c := Call{Name: m.Syscalls[0][0]}
			for idx, f := range m.Fields {
				c.Args[idx], c.Known[idx] = syscallArg(r, f), true
			}
			a := decide(prof.Syscalls, prof.DefaultAction, c)
			got := d.Policy.Decide(r).Allow
			if got && a.Verdict != Allowed {
				t.Fatalf("seed %d iteration %d: %s allowed by the derived policy, profile %v by %v\n%v", seed, iter, r, a.Verdict, a.Entry, prof.Syscalls)
			}
			safe++
			if !noted[r.Op] {
				if got != (a.Verdict == Allowed) {
					t.Fatalf("seed %d iteration %d: %s: derived allow=%v, profile %v by %v, and no note\n%v", seed, iter, r, got, a.Verdict, a.Entry, prof.Syscalls)
				}
				exact++
			}
		}
	}
	if exact < 10000 {
		t.Errorf("only %d requests compared exactly", exact)
	}
	t.Logf("%d requests safe, %d of them exact", safe, exact)
}

// TestCheckProperty: on random profiles A and B, Check(A, policy derived
// from B) reports every pair (policy rule, profile entry) for which a
// random SOCKET or OPENAT request is allowed by the policy and not by A,
// and only real ones; Check(A, policy derived from A) reports nothing.
func TestCheckProperty(t *testing.T) {
	seed := rand.Int63()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	found := 0
	for iter := 0; iter < 300; iter++ {
		a, b := randProfile(rng), randProfile(rng)
		da, _ := a.Derive(Options{})
		if bs, _ := Check(a, da.Policy, Options{}); len(bs) != 0 {
			t.Fatalf("seed %d iteration %d: the policy derived from a profile bypasses it: %v", seed, iter, bs)
		}
		db, _ := b.Derive(Options{})
		bs, err := Check(a, db.Policy, Options{})
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			rule  int
			entry policy.Pos // of the entry, zero for the default action
		}
		entryPos := func(e *Entry) policy.Pos {
			if e == nil {
				return policy.Pos{}
			}
			return e.Pos
		}
		reported := map[key]bool{}
		for _, x := range bs {
			reported[key{x.Rule, entryPos(x.Entry)}] = true
			// Real: the example is allowed by the policy and not by A.
			m, _ := Lookup(x.Request.Op)
			c := Call{Name: x.Syscall}
			for idx, f := range m.Fields {
				c.Args[idx], c.Known[idx] = syscallArg(x.Request, f), true
			}
			if !db.Policy.Decide(x.Request).Allow || decide(a.Syscalls, a.DefaultAction, c).Verdict == Allowed {
				t.Fatalf("seed %d iteration %d: reported bypass is not one: %s", seed, iter, x)
			}
		}
		for k := 0; k < 200; k++ {
			v := func() uint64 { return uint64(rng.Intn(8)) | uint64(rng.Intn(2))<<6 }
			var r policy.Request
			if rng.Intn(2) == 0 {
				r = policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: uint32(v()), Type: uint32(v()), Protocol: uint32(v())}}
			} else {
				r = policy.Request{Op: abi.OpOpenat, Open: abi.OpenData{Flags: v() | policy.OpenFlagsIgnore, Mode: v()}}
			}
			d := db.Policy.Decide(r)
			if !d.Allow {
				continue
			}
			m, _ := Lookup(r.Op)
			c := Call{Name: m.Syscalls[0][0]}
			for idx, f := range m.Fields {
				c.Args[idx], c.Known[idx] = syscallArg(r, f), true
			}
			ans := decide(a.Syscalls, a.DefaultAction, c)
			if ans.Verdict == Allowed {
				continue
			}
			found++
			if !reported[key{d.Rule, entryPos(ans.Entry)}] {
				t.Fatalf("seed %d iteration %d: %s is allowed by %s and %v by %v, not reported (reported: %v)",
					seed, iter, r, db.Policy.Describe(d), ans.Verdict, ans.Entry, bs)
			}
		}
	}
	if found < 500 {
		t.Errorf("only %d bypassing requests met", found)
	}
	t.Logf("%d bypassing requests, each reported", found)
}

// TestParseOCIConfig: the profile of a bundle's config.json is read with
// positions in that file; a configuration without one gives nil.
func TestParseOCIConfig(t *testing.T) {
	cfg := `{
  "ociVersion": "1.2.0",
  "process": {"args": ["sh"]},
  "linux": {
    "namespaces": [{"type": "pid"}],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [
        {"names": ["read", "write", "close"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
      ]
    }
  }
}`
	prof, err := ParseOCIConfig([]byte(cfg), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.Syscalls) != 2 || prof.Syscalls[1].Pos.String() != "config.json:12:9" || prof.DefaultPos.String() != "config.json:7:24" {
		t.Fatalf("profile %+v", prof)
	}
	pol := mustPolicy(t, "version: 1\ndefault: deny\nrules:\n  - ops: [READ, SOCKET]\n    action: allow\n")
	bs, _ := Check(prof, pol, Options{})
	var calls []string
	for _, b := range bs {
		calls = append(calls, b.Syscall)
		if b.Syscall == "socket" && b.Request.Socket.Family == 2 {
			t.Errorf("AF_INET socket reported: %s", b)
		}
	}
	// READ needs a call that reads at the file position (read, readv or
	// preadv2) and one that reads at an offset (pread64, preadv or
	// preadv2): this profile allows only read, so the second is missing,
	// reported against its first call.
	if strings.Join(calls, " ") != "pread64 socket" {
		t.Errorf("bypasses: %v", bs)
	}
	for _, c := range []string{`{"linux": {}}`, `{"process": {}}`, `{"linux": {"seccomp": null}}`} {
		if p, err := ParseOCIConfig([]byte(c), "c.json"); p != nil || err != nil {
			t.Errorf("%s: %v %v", c, p, err)
		}
	}
	if _, err := ParseOCIConfig([]byte(`{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}}}`), "c.json"); err == nil ||
		!strings.Contains(err.Error(), `c.json:1:59: unknown key "sycalls"`) {
		t.Errorf("error: %v", err)
	}
}

// TestFutexEquivalents: Debian's containers-common (kept in testdata)
// denies futex_wait, futex_wake and futex_waitv (EPERM) while allowing
// futex(2), which does all FUTEX_WAIT and FUTEX_WAKE do: no bypass for
// those two, one for FUTEX_WAITV (no futex(2) operation waits on several
// futexes); so does a profile answering them with ENOSYS. A profile that
// denies futex(2) too makes FUTEX_WAIT and FUTEX_WAKE bypasses.
func TestFutexEquivalents(t *testing.T) {
	pol := mustPolicy(t, "version: 1\ndefault: deny\nrules:\n  - ops: [FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAITV]\n    action: allow\n")
	debian, err := os.ReadFile(debianFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, src string
		want      string // "OP:call" of each bypass
	}{
		{"debian-containers-common", string(debian), "FUTEX_WAITV:futex_waitv"},
		{"enosys", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
 {"names": ["futex"], "action": "SCMP_ACT_ALLOW"},
 {"names": ["futex_wait", "futex_wake", "futex_waitv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}`,
			"FUTEX_WAITV:futex_waitv"},
		{"futex denied too", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
 {"names": ["futex", "futex_wait", "futex_wake", "futex_waitv"], "action": "SCMP_ACT_ERRNO"}]}`,
			"FUTEX_WAIT:futex_wait FUTEX_WAKE:futex_wake FUTEX_WAITV:futex_waitv"},
		{"futex only for some arguments", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
 {"names": ["futex"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 128, "op": "SCMP_CMP_EQ"}]},
 {"names": ["futex_wake"], "action": "SCMP_ACT_ALLOW"}]}`,
			"FUTEX_WAIT:futex_wait FUTEX_WAITV:futex_waitv"},
		{"futex_wait allowed, futex denied", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
 {"names": ["futex_wait", "futex_wake", "futex_waitv"], "action": "SCMP_ACT_ALLOW"}]}`,
			""},
	} {
		prof, err := Parse([]byte(tt.src), tt.name+".json")
		if err != nil {
			t.Fatal(err)
		}
		bs, err := Check(prof, pol, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range bs {
			got = append(got, b.Request.Op.String()+":"+b.Syscall)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s: bypasses %v, want %s", tt.name, bs, tt.want)
		}
		// The derived policy allows exactly the opcodes Check passes.
		d, err := prof.Derive(Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []abi.Opcode{abi.OpFutexWait, abi.OpFutexWake, abi.OpFutexWaitv} {
			reported := strings.Contains(" "+tt.want+" ", " "+op.String()+":")
			if allow := d.Policy.Decide(policy.Request{Op: op}).Allow; allow == reported {
				t.Errorf("%s: derived policy allow %v=%v, but Check reports it: %v", tt.name, op, allow, reported)
			}
		}
	}
}

// TestGroupsProperty: for every opcode with system calls and random
// profiles allowing a random subset of the calls it names, the derived
// policy allows the opcode exactly when each group has an allowed call,
// and Check of a policy allowing the opcode reports it exactly
// otherwise, against the first call of each group with none allowed.
func TestGroupsProperty(t *testing.T) {
	seed := rand.Int63()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	for _, m := range Table() {
		if len(m.Syscalls) == 0 || m.Fields != nil {
			continue
		}
		one := mustPolicy(t, "version: 1\ndefault: deny\nrules:\n  - ops: ["+m.Op.String()+"]\n    action: allow\n")
		calls := m.Calls()
		for iter := 0; iter < 40; iter++ {
			allowed := map[string]bool{}
			var names []string
			for _, c := range calls {
				if rng.Intn(2) == 0 {
					allowed[c] = true
					names = append(names, `"`+c+`"`)
				}
			}
			src := `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [` + strings.Join(names, ", ") + `], "action": "SCMP_ACT_ALLOW"}]}`
			if len(names) == 0 {
				src = `{"defaultAction": "SCMP_ACT_ERRNO"}`
			}
			prof, err := Parse([]byte(src), "p.json")
			if err != nil {
				t.Fatal(err)
			}
			want := true
			var missing []string // first call of each group with none allowed
			for _, g := range m.Syscalls {
				ok := false
				for _, c := range g {
					ok = ok || allowed[c]
				}
				if !ok {
					want = false
					missing = append(missing, g[0])
				}
			}
			d, err := prof.Derive(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Policy.Decide(policy.Request{Op: m.Op}).Allow; got != want {
				t.Fatalf("seed %d: %v with %v allowed: derived allow=%v, want %v", seed, m.Op, names, got, want)
			}
			bs, err := Check(prof, one, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bs {
				got = append(got, b.Request.Op.String()+":"+b.Syscall)
			}
			for i := range missing {
				missing[i] = m.Op.String() + ":" + missing[i]
			}
			if strings.Join(got, " ") != strings.Join(missing, " ") {
				t.Fatalf("seed %d: %v with %v allowed: bypasses against %v, want %v", seed, m.Op, names, got, missing)
			}
		}
	}
}
