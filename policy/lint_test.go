package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// TestLint checks, for small policies, exactly which findings lint reports
// (code and a distinctive part of the message, at a line).
func TestLint(t *testing.T) {
	type finding struct {
		line int
		code string
		text string
	}
	head := "version: 1\ndefault: deny\nrules:\n"
	tests := []struct {
		name string
		src  string
		want []finding
	}{
		{"clean", head + `  - ops: [READ]
    action: allow
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: [SOCK_STREAM, SOCK_DGRAM]
`, nil},
		{"shadowed by unconditional", head + `  - ops: [READ, WRITE]
    action: allow
  - ops: [READ]
    action: deny
`, []finding{{6, "never-matches", "rule 2 never matches: rule 1 (line 4) matches every request it would, first"}}},
		{"shadowed for some ops", head + `  - ops: [READ]
    action: allow
  - ops: [READ, WRITE]
    action: deny
    when:
      user_data: 1
  - ops: [WRITE]
    action: allow
`, []finding{{6, "never-matches", "rule 2 never matches for READ: rule 1 (line 4)"}}},
		{"shadowed by a wider set", head + `  - ops: [SOCKET]
    action: deny
    when:
      socket.family: [AF_PACKET, AF_NETLINK, AF_INET]
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
      socket.type: SOCK_STREAM
`, []finding{{8, "never-matches", "rule 2 never matches: rule 1"}}},
		{"shadowed by a wider range", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.port: {ge: 1024}
  - ops: [CONNECT]
    action: deny
    when:
      connect.port: {range: [8000, 8080]}
`, []finding{{7, "needs-7.2", ""}, {8, "never-matches", "rule 2 never matches: rule 1"}}},
		{"shadowed by bits", head + `  - ops: [OPENAT]
    action: deny
    when:
      open.flags: {has_any: O_CREAT}
  - ops: [OPENAT]
    action: allow
    when:
      open.flags: {has_all: O_CREAT|O_EXCL}
`, []finding{{8, "never-matches", "rule 2 never matches: rule 1"}}},
		{"not shadowed by a narrower rule", head + `  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
      socket.type: SOCK_STREAM
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: SOCK_STREAM
`, []finding{{4, "redundant", "rule 2 (line 9), later, also allows every request it matches"}}},
		{"range lo > hi", head + `  - ops: [NOP]
    action: allow
    when:
      user_data: {range: [10, 1]}
`, []finding{{4, "never-matches", "range [10, 1] on user_data is empty (lo > hi)"}}},
		{"eq outside in", head + `  - ops: [SOCKET]
    action: allow
    when:
      socket.family: {in: [AF_INET, AF_INET6], eq: AF_UNIX}
`, []finding{{4, "never-matches", "no value of socket.family satisfies"}}},
		{"has_all and has_none", head + `  - ops: [OPENAT]
    action: allow
    when:
      open.flags: {has_all: O_CREAT, has_none: O_CREAT|O_EXCL}
`, []finding{{4, "never-matches", "must both have and lack bits O_CREAT"}}},
		{"has_any zero", head + `  - ops: [OPENAT]
    action: allow
    when:
      open.flags: {has_any: O_RDONLY}
`, []finding{{4, "never-matches", "has_any of no bits"}}},
		{"masked outside mask", head + `  - ops: [NOP]
    action: allow
    when:
      user_data: {masked: {mask: 0xf0, value: 0x0f}}
`, []finding{{4, "never-matches", "has bits outside its mask"}}},
		{"gt max", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.port: {gt: 65535}
`, []finding{{4, "never-matches", "connect.port > 65535 never holds"}, {7, "needs-7.2", ""}}},
		{"lt and gt", head + `  - ops: [NOP]
    action: allow
    when:
      user_data: {lt: 5, gt: 9}
`, []finding{{4, "never-matches", "no value of user_data"}}},
		{"cidr inside not_cidr", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.addr: {cidr: 10.1.0.0/16, not_cidr: 10.0.0.0/8}
`, []finding{{4, "never-matches", "inside a not_cidr"}, {7, "needs-7.2", ""}, {7, "ipv4-mapped", ""}}},
		{"cidr and family", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.family: AF_INET6
      connect.addr: 10.0.0.0/8
`, []finding{{4, "never-matches", "excludes the address family"}, {7, "needs-7.2", ""}}},
		{"redundant deny", head + `  - ops: [URING_CMD]
    action: deny
  - ops: [READ]
    action: allow
`, []finding{{4, "redundant", "rule 1 changes nothing: the default is deny"}}},
		{"not redundant before an allow", head + `  - ops: [SOCKET]
    action: deny
    when:
      socket.type: SOCK_RAW
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
`, nil},
		{"redundant for some ops", head + `  - ops: [OPENAT, OPENAT2]
    action: deny
    when:
      open.flags: {has_any: O_CREAT}
  - ops: [OPENAT]
    action: allow
    when:
      open.flags: {has_none: O_TRUNC}
`, []finding{{4, "redundant", "rule 1 changes nothing for OPENAT2"}}},
		{"default allow", "version: 1\ndefault: allow\nrules:\n  - ops: [URING_CMD, URING_CMD128]\n    action: deny\n",
			[]finding{{2, "default-allow", "default: allow lets every opcode"}}},
		{"default allow passes uring_cmd", "version: 1\ndefault: allow\n",
			[]finding{{2, "default-allow", ""}, {2, "risky-allow", "default: allow allows URING_CMD:"},
				{2, "risky-allow", "default: allow allows URING_CMD128"}}},
		{"uring_cmd allowed", head + "  - ops: [URING_CMD]\n    action: allow\n",
			[]finding{{4, "risky-allow", "rule 1 allows URING_CMD: driver commands"}}},
		{"socket any family", head + "  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.type: SOCK_STREAM\n",
			[]finding{{4, "risky-allow", "rule 1 allows SOCKET with any address family"}}},
		{"socket packet", head + `  - ops: [SOCKET]
    action: allow
    when:
      socket.family: {ne: AF_UNIX}
      socket.type: SOCK_DGRAM
`, []finding{{4, "risky-allow", "rule 1 allows SOCKET with AF_PACKET"}, {4, "risky-allow", "rule 1 allows SOCKET with AF_NETLINK"}}},
		{"socket raw", head + `  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
`, []finding{{4, "risky-allow", "rule 1 allows SOCKET with SOCK_RAW"}}},
		{"raw denied first", head + `  - ops: [SOCKET]
    action: deny
    when:
      socket.type: SOCK_RAW
  - ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
`, nil},
		{"openat create anywhere", head + "  - ops: [OPENAT, OPENAT2]\n    action: allow\n",
			[]finding{{4, "risky-allow", "rule 1 allows OPENAT and OPENAT2 with O_CREAT or O_TMPFILE under any path"}}},
		{"openat create explicit", head + `  - ops: [OPENAT2]
    action: allow
    when:
      open.resolve: {has_any: RESOLVE_BENEATH|RESOLVE_IN_ROOT}
  - ops: [OPENAT]
    action: allow
    when:
      open.flags: {has_none: O_CREAT|__O_TMPFILE}
`, nil},
		{"multi-bit has_none", head + "  - ops: [OPENAT]\n    action: allow\n    when:\n      open.flags: {has_none: O_CREAT|O_TMPFILE}\n",
			[]finding{{7, "multi-bit", "has_none includes O_TMPFILE, which is several bits (O_DIRECTORY, __O_TMPFILE)"}}},
		{"multi-bit has_any O_SYNC", head + "  - ops: [OPENAT]\n    action: deny\n    when:\n      open.flags: {has_any: O_SYNC}\n  - ops: [OPENAT]\n    action: allow\n",
			[]finding{{7, "multi-bit", "has_any includes O_SYNC"}, {8, "risky-allow", ""}}},
		{"multi-bit has_all is fine", head + "  - ops: [OPENAT]\n    action: deny\n    when:\n      open.flags: {has_all: O_TMPFILE}\n  - ops: [OPENAT]\n    action: allow\n      \n", []finding{{8, "risky-allow", ""}}},
		{"send-address", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.port: 443
  - ops: [SENDMSG]
    action: allow
`, []finding{{7, "send-address", "restricts CONNECT by address or port, but SENDMSG may run"}, {7, "needs-7.2", ""}}},
		{"send-address, sends denied", head + `  - ops: [CONNECT]
    action: allow
    when:
      connect.port: 443
`, []finding{{7, "needs-7.2", ""}}},
		{"sqe_flags equality", head + "  - ops: [NOP]\n    action: allow\n    when:\n      sqe_flags: 0\n",
			[]finding{{7, "sqe-flags-equality", "compares sqe_flags with eq"}}},
		{"sqe_flags async bit", head + "  - ops: [NOP]\n    action: allow\n    when:\n      sqe_flags: {has_none: IOSQE_ASYNC}\n",
			[]finding{{7, "sqe-flags-equality", "tests IOSQE_ASYNC, which the kernel sets by itself (on every FSYNC, SYNC_FILE_RANGE, FALLOCATE, MADVISE, SPLICE, TEE, SHUTDOWN or FTRUNCATE request"}}},
		{"sqe_flags bit test ok", head + "  - ops: [NOP]\n    action: allow\n    when:\n      sqe_flags: {has_none: IOSQE_IO_LINK}\n", nil},
		{"ipv4-mapped", head + `  - ops: [CONNECT]
    action: deny
    when:
      connect.addr: 169.254.0.0/16
  - ops: [CONNECT]
    action: allow
`, []finding{{7, "needs-7.2", ""}, {7, "ipv4-mapped", "add ::ffff:169.254.0.0/112"}}},
		{"ipv4-mapped covered", head + `  - ops: [CONNECT]
    action: deny
    when:
      connect.addr: [169.254.0.0/16, "::ffff:0:0/96"]
  - ops: [CONNECT]
    action: allow
`, []finding{{7, "needs-7.2", ""}}},
	}
	for _, tt := range tests {
		p, err := Parse([]byte(tt.src), "l.yaml")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := p.Lint()
		used := make([]bool, len(got))
		for _, w := range tt.want {
			found := false
			for i, d := range got {
				if !used[i] && d.Pos.Line == w.line && d.Code == w.code && strings.Contains(d.Message, w.text) {
					used[i], found = true, true
					break
				}
			}
			if !found {
				t.Errorf("%s: missing %s at line %d containing %q", tt.name, w.code, w.line, w.text)
			}
		}
		for i, d := range got {
			if !used[i] {
				t.Errorf("%s: unexpected finding %s", tt.name, d)
			}
		}
	}
}

// TestLintSorted checks findings come out in position order.
func TestLintSorted(t *testing.T) {
	p := mustParse(t, "version: 1\ndefault: allow\nrules:\n  - ops: [URING_CMD]\n    action: allow\n  - ops: [NOP]\n    action: allow\n    when:\n      sqe_flags: 1\n")
	ds := p.Lint()
	if len(ds) < 3 {
		t.Fatalf("want at least 3 findings, got %v", ds)
	}
	for i := 1; i < len(ds); i++ {
		if ds[i].Pos.Before(ds[i-1].Pos) {
			t.Errorf("finding %d (%v) before %d (%v)", i, ds[i].Pos, i-1, ds[i-1].Pos)
		}
	}
}

// bigPolicy returns a policy of n rules on NOP, each allowing one
// user_data value, after an unconditional NOP deny when shadowed.
func bigPolicy(n int, shadowed bool) *Policy {
	p := &Policy{Version: 1, Default: Deny, File: "big.yaml"}
	if shadowed {
		p.Rules = append(p.Rules, Rule{Ops: []abi.Opcode{abi.OpNop}, Action: Deny, Pos: Pos{Line: 1}})
	}
	for i := range n {
		p.Rules = append(p.Rules, Rule{Ops: []abi.Opcode{abi.OpNop}, Action: Allow, Pos: Pos{Line: i + 2},
			Conds: []Cond{{Field: "user_data", Op: Eq, Values: []uint64{uint64(i)}}}})
	}
	return p
}

// TestLintBounded: past shadowWindow rules per opcode the linter says its
// checks are bounded, still finds a rule shadowed by the first
// unconditional one however far back, and reports no false redundancy.
func TestLintBounded(t *testing.T) {
	count := func(ds []Diagnostic, code string) int {
		n := 0
		for _, d := range ds {
			if d.Code == code {
				n++
			}
		}
		return n
	}
	ds := bigPolicy(shadowWindow, false).Lint()
	if count(ds, "lint-bounded") != 0 || count(ds, "never-matches") != 0 || count(ds, "redundant") != 0 {
		t.Errorf("%d rules: %v", shadowWindow, ds)
	}
	n := 3 * shadowWindow
	ds = bigPolicy(n, false).Lint()
	if count(ds, "lint-bounded") != 1 || count(ds, "never-matches") != 0 || count(ds, "redundant") != 0 {
		t.Errorf("%d rules: %d bounded, %d never-matches, %d redundant", n, count(ds, "lint-bounded"), count(ds, "never-matches"), count(ds, "redundant"))
	}
	ds = bigPolicy(n, true).Lint()
	if got := count(ds, "never-matches"); got != n {
		t.Errorf("%d rules behind an unconditional deny: %d reported as never matching", n, got)
	}
}

// BenchmarkLintBig lints policies of 1,000 and 10,000 rules: the time per
// rule should stay about the same (near-linear).
func BenchmarkLintBig(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		p := bigPolicy(n, false)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				p.Lint()
			}
		})
	}
}
