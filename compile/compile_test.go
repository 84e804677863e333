package compile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/policy"
)

var (
	k70 = abi.Version{Major: 7, Minor: 0}
	k71 = abi.Version{Major: 7, Minor: 1}
	k72 = abi.Version{Major: 7, Minor: 2}
)

// parse parses a policy written in the test.
func parse(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func mustCompile(t testing.TB, p *policy.Policy, opt Options) *Plan {
	t.Helper()
	plan, err := Compile(p, opt)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return plan
}

// regFor returns the registration for op, failing if there is not exactly one.
func regFor(t *testing.T, plan *Plan, op abi.Opcode) Registration {
	t.Helper()
	var found []Registration
	for _, r := range plan.Registrations {
		if r.Op == op {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d registrations for %v, want 1", len(found), op)
	}
	return found[0]
}

// comparisons returns how many conditional jumps a path executed.
func comparisons(prog *cbpf.Program, path []int) int {
	ins := prog.Instructions()
	n := 0
	for _, pc := range path {
		if ins[pc].IsConditionalJump() {
			n++
		}
	}
	return n
}

// TestTreeCost checks the compiler's cost bound: a set of 256 values costs
// at most 10 comparisons on its worst path, measured by running the filter
// on every member, every neighbour of a member and random values. It
// checks 32-bit, 8-bit-in-a-word and 64-bit fields, and that the naive
// compile really is one comparison per value.
func TestTreeCost(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type tc struct {
		name  string
		field string
		vals  func() []uint64
		set   func(req *policy.Request, v uint64)
		op    abi.Opcode
	}
	cases := []tc{
		{"socket.protocol random", "socket.protocol", func() []uint64 {
			var v []uint64
			for range 256 {
				v = append(v, uint64(r.Uint32()))
			}
			return v
		}, func(q *policy.Request, v uint64) { q.Socket.Protocol = uint32(v) }, abi.OpSocket},
		{"socket.family dense", "socket.family", func() []uint64 {
			var v []uint64
			for i := range 256 {
				v = append(v, uint64(3*i))
			}
			return v
		}, func(q *policy.Request, v uint64) { q.Socket.Family = uint32(v) }, abi.OpSocket},
		{"user_data 64-bit", "user_data", func() []uint64 {
			var v []uint64
			for range 256 {
				v = append(v, r.Uint64()>>r.IntN(64))
			}
			return v
		}, func(q *policy.Request, v uint64) { q.UserData = v }, abi.OpNop},
		{"connect.port", "connect.port", func() []uint64 {
			var v []uint64
			for range 256 {
				v = append(v, uint64(r.IntN(65536)))
			}
			return v
		}, func(q *policy.Request, v uint64) { q.Connect.Port = uint16(v) }, abi.OpConnect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := c.vals()
			p := &policy.Policy{Version: 1, Default: policy.Deny, Rules: []policy.Rule{{
				Ops: []abi.Opcode{c.op}, Action: policy.Allow,
				Conds: []policy.Cond{{Field: c.field, Op: policy.In, Values: vals}},
			}}}
			for _, naive := range []bool{false, true} {
				plan := mustCompile(t, p, Options{Kernel: k72, Naive: naive})
				reg := regFor(t, plan, c.op)
				worst, members := 0, 0
				probe := func(v uint64) {
					q := policy.Request{Op: c.op}
					c.set(&q, v)
					w := cbpf.WordsOf(q.Ctx(binary.LittleEndian).Encode(binary.LittleEndian), binary.LittleEndian)
					ret, path := reg.Prog.Trace(&w)
					if want := p.Decide(q).Allow; (ret != 0) != want {
						t.Fatalf("value %#x: filter says %v, evaluator %v", v, ret != 0, want)
					}
					if ret != 0 {
						members++
					}
					worst = max(worst, comparisons(reg.Prog, path))
				}
				for _, v := range vals {
					probe(v)
					probe(v + 1)
					probe(v - 1)
				}
				for range 2000 {
					probe(r.Uint64())
				}
				t.Logf("naive=%v: %d instructions, worst path %d comparisons", naive, reg.Prog.Len(), worst)
				if members == 0 {
					t.Fatal("no probe was a member")
				}
				if !naive && worst > 10 {
					t.Errorf("worst path %d comparisons, want at most 10", worst)
				}
				// The naive compile compares one value at a time (for
				// 64-bit values, one high word at a time, then one low
				// word at a time): far more than the tree.
				if naive && worst < 100 {
					t.Errorf("naive worst path %d comparisons; expected about one per value", worst)
				}
			}
		})
	}
}

// TestLongJumps compiles filters whose jumps span more than 255
// instructions, checks the layout inserted JA trampolines, that the
// checker accepts the programs and that they decide correctly.
func TestLongJumps(t *testing.T) {
	var vals []uint64
	for i := range 400 {
		vals = append(vals, uint64(7*i+1))
	}
	p := &policy.Policy{Version: 1, Default: policy.Deny, Rules: []policy.Rule{
		{Ops: []abi.Opcode{abi.OpSocket}, Action: policy.Deny,
			Conds: []policy.Cond{{Field: "socket.protocol", Op: policy.In, Values: vals}}},
		{Ops: []abi.Opcode{abi.OpSocket}, Action: policy.Allow,
			Conds: []policy.Cond{{Field: "socket.family", Op: policy.NotIn, Values: vals}}},
	}}
	for _, naive := range []bool{false, true} {
		plan := mustCompile(t, p, Options{Kernel: k72, Naive: naive})
		reg := regFor(t, plan, abi.OpSocket)
		ins := reg.Prog.Instructions()
		trampolines := 0
		for pc, in := range ins {
			if in.Op == cbpf.ClassJMP|cbpf.JmpJA && in.K > 255 && pc > 0 && ins[pc-1].IsConditionalJump() {
				trampolines++
			}
		}
		if len(ins) < 300 || trampolines == 0 {
			t.Fatalf("naive=%v: %d instructions, %d long-jump trampolines; the test needs both", naive, len(ins), trampolines)
		}
		for i := range 3000 {
			q := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: uint32(i), Protocol: uint32(i * 3)}}
			if got, want := plan.Decide(q.Ctx(binary.LittleEndian)).Allow, p.Decide(q).Allow; got != want {
				t.Fatalf("naive=%v: %v: plan %v, evaluator %v", naive, q, got, want)
			}
		}
	}
}

// TestLayout checks the lowering of long conditional jumps on a synthetic
// program: true way long, false way long, both long.
func TestLayout(t *testing.T) {
	const n = 600
	for _, shape := range []struct{ t, f int }{{n - 2, 2}, {2, n - 2}, {n - 2, n - 1}, {300, 260}} {
		p := make(sprog, n)
		p[0] = ld(16)
		p[1] = jif(cbpf.JmpJEQ, 7, shape.t, shape.f)
		for i := 2; i < n; i++ {
			p[i] = ret(uint32(i))
		}
		insns, err := layout(p)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := cbpf.Check(insns)
		if err != nil {
			t.Fatalf("%+v: %v", shape, err)
		}
		for _, v := range []uint32{7, 8} {
			w := cbpf.Words{4: v}
			want := uint32(shape.f)
			if v == 7 {
				want = uint32(shape.t)
			}
			if got := prog.Run(&w); got != want {
				t.Errorf("%+v A=%d: returned %d, want %d", shape, v, got, want)
			}
		}
		back, err := unlayout(insns)
		if err != nil || len(back) < n {
			t.Errorf("%+v: unlayout: %v", shape, err)
		}
	}
}

// TestDenyRestPlacement checks which opcodes are registered and where
// DENY_REST goes, for both defaults and both forms of default deny.
func TestDenyRestPlacement(t *testing.T) {
	const src = `
version: 1
default: deny
rules:
  - ops: [READ, WRITE]
    action: allow
  - ops: [SOCKET]
    action: allow
    when: {socket.family: AF_INET}
  - ops: [OPENAT]
    action: deny
`
	cases := []struct {
		op    abi.Opcode
		allow bool
	}{{abi.OpRead, true}, {abi.OpWrite, true}, {abi.OpOpenat, false}, {abi.OpNop, false}, {abi.OpUringCmd, false}}
	t.Run("default deny", func(t *testing.T) {
		plan := mustCompile(t, parse(t, src), Options{Kernel: k70})
		if !plan.DenyNewOpcodes || !plan.DeniesNew() {
			t.Error("DenyNewOpcodes not set on a default-deny plan")
		}
		// Every opcode but the always-allowed READ and WRITE has its
		// filter, none with a flag: no stub, no filter on the cheap path.
		if len(plan.Registrations) != abi.OpLast-2 {
			t.Errorf("%d registrations, want %d", len(plan.Registrations), abi.OpLast-2)
		}
		for _, r := range plan.Registrations {
			if r.Op == abi.OpRead || r.Op == abi.OpWrite {
				t.Errorf("%v has a filter; an always-allowed opcode needs none", r.Op)
			}
			if r.Flags != 0 {
				t.Errorf("%v: flags %#x, want none", r.Op, r.Flags)
			}
			if r.Op != abi.OpSocket {
				if got := r.Prog.Instructions(); len(got) != 1 || got[0] != cbpf.Ret(0) {
					t.Errorf("%v program %v, want ret #0", r.Op, got)
				}
			}
		}
		if n := regFor(t, plan, abi.OpSocket).Prog.Len(); n < 3 {
			t.Errorf("SOCKET program has %d instructions, want its conditions", n)
		}
		for _, c := range cases {
			v := plan.Decide(policy.Request{Op: c.op}.Ctx(binary.LittleEndian))
			if v.Allow != c.allow {
				t.Errorf("%v: allow=%v, want %v", c.op, v.Allow, c.allow)
			}
			switch {
			case c.allow && len(v.Runs) != 0:
				t.Errorf("%v: runs %+v, want none", c.op, v.Runs)
			case !c.allow && (len(v.Runs) != 1 || v.Runs[0].Stub || v.Runs[0].Ret != 0):
				t.Errorf("%v: runs %+v, want its own ret #0", c.op, v.Runs)
			}
		}
		var w cbpf.Words
		w[2] = abi.OpLast // opcode byte of a newer kernel's opcode
		if plan.Allows(&w) || plan.DecideWords(&w, false).Allow {
			t.Error("an opcode newer than ringfence is allowed")
		}
	})
	t.Run("default deny, DENY_REST form", func(t *testing.T) {
		plan := mustCompile(t, parse(t, src), Options{Kernel: k70, DenyRest: true})
		if plan.DenyNewOpcodes || !plan.DeniesNew() {
			t.Errorf("DenyNewOpcodes %v, DeniesNew %v; want false, true", plan.DenyNewOpcodes, plan.DeniesNew())
		}
		var ops []abi.Opcode
		for i, r := range plan.Registrations {
			ops = append(ops, r.Op)
			if last := i == len(plan.Registrations)-1; (r.Flags&abi.FilterDenyRest != 0) != last {
				t.Errorf("registration %d (%v): flags %d; DENY_REST must be on the last one only", i, r.Op, r.Flags)
			}
		}
		want := []abi.Opcode{abi.OpRead, abi.OpWrite, abi.OpSocket}
		if len(ops) != len(want) || ops[0] != want[0] || ops[1] != want[1] || ops[2] != want[2] {
			t.Fatalf("registered %v, want %v", ops, want)
		}
		if got := regFor(t, plan, abi.OpRead).Prog.Instructions(); len(got) != 1 || got[0] != cbpf.Ret(1) {
			t.Errorf("READ program %v, want ret #1", got)
		}
		for _, c := range cases {
			v := plan.Decide(policy.Request{Op: c.op}.Ctx(binary.LittleEndian))
			if v.Allow != c.allow {
				t.Errorf("%v: allow=%v, want %v", c.op, v.Allow, c.allow)
			}
			if !c.allow && (len(v.Runs) != 1 || !v.Runs[0].Stub || v.Runs[0].Reg != len(plan.Registrations)-1) {
				t.Errorf("%v: runs %+v, want the DENY_REST stub of the last registration", c.op, v.Runs)
			}
		}
	})
	t.Run("everything denied", func(t *testing.T) {
		p := parse(t, "version: 1\ndefault: deny\nrules:\n  - ops: [NOP]\n    action: deny\n")
		// No opcode is always allowed, so DENY_REST costs nothing: both
		// forms are one ret #0 with it.
		for _, denyRest := range []bool{false, true} {
			plan := mustCompile(t, p, Options{Kernel: k70, DenyRest: denyRest})
			if len(plan.Registrations) != 1 || plan.Registrations[0].Flags != abi.FilterDenyRest ||
				plan.Registrations[0].Prog.Instructions()[0] != cbpf.Ret(0) || plan.DenyNewOpcodes {
				t.Fatalf("DenyRest %v: %+v, DenyNewOpcodes %v; want one ret #0 with DENY_REST", denyRest, plan.Registrations, plan.DenyNewOpcodes)
			}
			for op := range abi.Opcode(abi.OpLast) {
				if plan.Decide(policy.Request{Op: op}.Ctx(binary.LittleEndian)).Allow {
					t.Errorf("%v allowed", op)
				}
			}
		}
	})
	t.Run("nothing always allowed", func(t *testing.T) {
		// Conditions only: the default form uses DENY_REST, which then
		// runs no filter an allowed request would not run anyway.
		p := parse(t, "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when: {socket.family: AF_INET}\n")
		plan := mustCompile(t, p, Options{Kernel: k70})
		if len(plan.Registrations) != 1 || plan.Registrations[0].Op != abi.OpSocket || plan.Registrations[0].Flags != abi.FilterDenyRest || plan.DenyNewOpcodes {
			t.Fatalf("%+v, DenyNewOpcodes %v; want SOCKET's filter with DENY_REST", plan.Registrations, plan.DenyNewOpcodes)
		}
	})
	t.Run("default allow", func(t *testing.T) {
		p := parse(t, `
version: 1
default: allow
rules:
  - ops: [URING_CMD]
    action: deny
  - ops: [SOCKET]
    action: deny
    when: {socket.family: AF_PACKET}
  - ops: [READ]
    action: allow
`)
		plan := mustCompile(t, p, Options{Kernel: k70})
		if len(plan.Registrations) != 2 {
			t.Fatalf("%d registrations, want 2 (URING_CMD, SOCKET)", len(plan.Registrations))
		}
		for _, r := range plan.Registrations {
			if r.Flags != 0 {
				t.Errorf("%v: flags %d, want none", r.Op, r.Flags)
			}
		}
		if got := regFor(t, plan, abi.OpUringCmd).Prog.Instructions(); len(got) != 1 || got[0] != cbpf.Ret(0) {
			t.Errorf("URING_CMD program %v, want ret #0", got)
		}
		v := plan.Decide(policy.Request{Op: abi.OpNop}.Ctx(binary.LittleEndian))
		if !v.Allow || len(v.Runs) != 0 {
			t.Errorf("NOP: %+v, want allowed with no filter run", v)
		}
		if plan.DeniesNew() {
			t.Error("a default-allow plan denies newer opcodes")
		}
	})
}

// TestChains checks the kernel's chain semantics on hand-made plans: later
// filters run first, a stub stays last and only fills empty opcodes.
func TestChains(t *testing.T) {
	allow := cbpf.MustCheck([]cbpf.Instruction{cbpf.Ret(1)})
	deny := cbpf.MustCheck([]cbpf.Instruction{cbpf.Ret(0)})
	plan := &Plan{ByteOrder: binary.LittleEndian, Registrations: []Registration{
		{Op: abi.OpRead, Prog: allow},
		{Op: abi.OpWrite, Prog: allow, Flags: abi.FilterDenyRest},
		{Op: abi.OpNop, Prog: allow}, // too late: NOP already has the stub
		{Op: abi.OpRead, Prog: deny},
	}}
	check := func(op abi.Opcode, allow bool, regs ...int) {
		t.Helper()
		v := plan.Decide(abi.Ctx{Opcode: uint8(op)})
		var got []int
		for _, r := range v.Runs {
			got = append(got, r.Reg)
		}
		if v.Allow != allow || len(got) != len(regs) {
			t.Errorf("%v: allow=%v runs=%v, want %v %v", op, v.Allow, got, allow, regs)
			return
		}
		for i := range got {
			if got[i] != regs[i] {
				t.Errorf("%v: runs %v, want %v", op, got, regs)
			}
		}
	}
	check(abi.OpRead, false, 3) // the later deny runs first and stops the walk
	check(abi.OpWrite, true, 1)
	check(abi.OpNop, false, 2, 1) // NOP's own filter, then the stub
	check(abi.OpSocket, false, 1)
}

// TestKernelGating checks the kernel version errors.
func TestKernelGating(t *testing.T) {
	src := `version: 1
default: deny
rules:
  - ops: [CONNECT]
    action: allow
    when:
      connect.port: 443
      connect.addr: {cidr: [10.0.0.0/8]}
`
	p := parse(t, src)
	for _, k := range []abi.Version{k70, k71} {
		_, err := Compile(p, Options{Kernel: k})
		want := "policy.yaml:7:21: connect.port needs Linux 7.2 or later (CONNECT carries no data for filters before 7.2); target is " + k.String()
		if err == nil || err.Error() != want {
			t.Errorf("kernel %v: error %v\nwant %s", k, err, want)
		}
	}
	if _, err := Compile(p, Options{Kernel: k72}); err != nil {
		t.Errorf("kernel 7.2: %v", err)
	}
	_, err := Compile(p, Options{Kernel: abi.Version{Major: 6, Minor: 19}})
	if err == nil || !strings.Contains(err.Error(), "io_uring BPF filters need Linux 7.0") {
		t.Errorf("kernel 6.19: error %v", err)
	}
	// CONNECT without conditions on its data compiles for 7.0.
	plain := parse(t, "version: 1\ndefault: deny\nrules:\n  - ops: [CONNECT]\n    action: allow\n    when: {user_data: 7}\n")
	plan := mustCompile(t, plain, Options{Kernel: k70})
	if r := regFor(t, plan, abi.OpConnect); r.PDUSize != 0 {
		t.Errorf("CONNECT on user_data: pdu_size %d, want 0", r.PDUSize)
	}
}

// TestPDUSize checks pdu_size is the opcode's data size exactly when the
// program reads per-opcode data.
func TestPDUSize(t *testing.T) {
	p := parse(t, `version: 1
default: deny
rules:
  - ops: [SOCKET]
    action: allow
    when: {socket.family: AF_INET}
  - ops: [OPENAT, OPENAT2]
    action: allow
    when: {open.flags: {has_none: O_CREAT}}
  - ops: [CONNECT]
    action: allow
    when: {connect.port: 443}
  - ops: [READ]
    action: allow
    when: {user_data: 7}
`)
	plan := mustCompile(t, p, Options{Kernel: k72})
	for op, want := range map[abi.Opcode]uint8{abi.OpSocket: 12, abi.OpOpenat: 24, abi.OpOpenat2: 24, abi.OpConnect: 24, abi.OpRead: 0} {
		if got := regFor(t, plan, op).PDUSize; got != want {
			t.Errorf("%v: pdu_size %d, want %d", op, got, want)
		}
	}
}

// loads returns the context offsets a program loads, in order.
func loads(prog *cbpf.Program) []uint32 {
	var out []uint32
	for _, in := range prog.Instructions() {
		if in.Op == cbpf.ClassLD|cbpf.SizeW|cbpf.ModeABS {
			out = append(out, in.K)
		}
	}
	return out
}

// TestWords checks that 64-bit fields load their high word only where it
// matters, for both byte orders, and that a field's word is loaded once.
func TestWords(t *testing.T) {
	tests := []struct {
		when string
		le   []uint32 // loads on little-endian
		be   []uint32
	}{
		{"{user_data: 7}", []uint32{4, 0}, []uint32{0, 4}},                  // lo and hi == 0
		{"{user_data: {has_any: 0x30}}", []uint32{0}, []uint32{4}},          // lo only
		{"{user_data: {has_any: 0x3000000000}}", []uint32{4}, []uint32{0}},  // hi only
		{"{user_data: {lt: 0x100000000}}", []uint32{4}, []uint32{0}},        // hi == 0 decides
		{"{user_data: {in: [1, 2, 3, 9]}}", []uint32{4, 0}, []uint32{0, 4}}, // one hi test, then lo
		{"{sqe_flags: {has_any: IOSQE_ASYNC}}", []uint32{8}, []uint32{8}},   // one jset on word 8
		{"{socket.family: 2, socket.type: 1}", []uint32{16, 20}, []uint32{16, 20}},
	}
	for _, tt := range tests {
		op := "NOP"
		if strings.Contains(tt.when, "socket") {
			op = "SOCKET"
		}
		p := parse(t, "version: 1\ndefault: deny\nrules:\n  - ops: ["+op+"]\n    action: allow\n    when: "+tt.when+"\n")
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			plan := mustCompile(t, p, Options{Kernel: k70, ByteOrder: bo})
			want := tt.le
			if bo == binary.BigEndian {
				want = tt.be
			}
			got := loads(regFor(t, plan, map[string]abi.Opcode{"NOP": abi.OpNop, "SOCKET": abi.OpSocket}[op]).Prog)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %v: loads %v, want %v\n%s", tt.when, bo, got, want, plan.Text())
			}
		}
	}
}

// TestPortConstants checks connect.port equality compares the loaded word
// with the port as the byte order lays it out, with no conversion code.
func TestPortConstants(t *testing.T) {
	p := parse(t, "version: 1\ndefault: deny\nrules:\n  - ops: [CONNECT]\n    action: allow\n    when: {connect.port: 443}\n")
	for bo, k := range map[binary.ByteOrder]uint32{binary.LittleEndian: 0xbb01, binary.BigEndian: 443 << 16} {
		plan := mustCompile(t, p, Options{Kernel: k72, ByteOrder: bo})
		found := false
		for _, in := range regFor(t, plan, abi.OpConnect).Prog.Instructions() {
			if in.IsConditionalJump() && in.K == k {
				found = true
			}
			if in.Op == cbpf.ClassALU|cbpf.AluMul {
				t.Errorf("%v: byte swap code for an equality", bo)
			}
		}
		if !found {
			t.Errorf("%v: no comparison with %#x", bo, k)
		}
	}
}

// TestCIDR checks prefixes of both families, on the edges.
func TestCIDR(t *testing.T) {
	p := parse(t, `version: 1
default: deny
rules:
  - ops: [CONNECT]
    action: allow
    when:
      connect.addr: {cidr: [10.1.0.0/16, 192.168.7.128/25, 8.8.8.8/32, "fd00::/8", "2001:db8:1::/48", "::1/128"]}
`)
	cases := map[string]bool{
		"10.1.0.0": true, "10.1.255.255": true, "10.2.0.0": false, "10.0.255.255": false,
		"192.168.7.128": true, "192.168.7.255": true, "192.168.7.127": false, "8.8.8.8": true, "8.8.8.9": false,
		"fd00::": true, "fdff:ffff::1": true, "fe00::": false, "fc00::": false,
		"2001:db8:1::": true, "2001:db8:1:ffff::1": true, "2001:db8:2::": false, "2001:db8::": false,
		"::1": true, "::2": false, "::": false, "::ffff:10.1.0.1": false,
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, naive := range []bool{false, true} {
			plan := mustCompile(t, p, Options{Kernel: k72, ByteOrder: bo, Naive: naive})
			for s, want := range cases {
				a := netip.MustParseAddr(s)
				q := policy.Request{Op: abi.OpConnect}
				q.Connect.Family = policy.AFInet6
				if a.Is4() {
					q.Connect.Family = policy.AFInet
				}
				b := a.AsSlice()
				copy(q.Connect.Addr[:], b)
				if got := plan.Decide(q.Ctx(bo)).Allow; got != want || p.Decide(q).Allow != want {
					t.Errorf("%v naive=%v %s: plan %v, evaluator %v, want %v", bo, naive, s, got, p.Decide(q).Allow, want)
				}
				// The other family never matches.
				q.Connect.Family ^= policy.AFInet ^ policy.AFInet6
				if plan.Decide(q.Ctx(bo)).Allow != p.Decide(q).Allow {
					t.Errorf("%v %s with the other family: plan and evaluator differ", bo, s)
				}
			}
		}
	}
}

// TestFragmentContract checks the builder refuses code that leaves a
// fragment other than by its exits.
func TestFragmentContract(t *testing.T) {
	b := &builder{}
	m, mm, other := b.newLabel(), b.newLabel(), b.newLabel()
	b.fragment("stray jump", []label{m, mm}, func() {
		b.emit(cbpf.LoadAbs(16))
		b.jump(cbpf.JmpJEQ, 1, m, other)
	})
	b.place(m)
	b.place(mm)
	b.place(other)
	b.ret(0)
	if _, err := b.finish(); err == nil || !strings.Contains(err.Error(), "neither an exit nor inside") {
		t.Errorf("stray jump: %v", err)
	}

	b = &builder{}
	m, mm = b.newLabel(), b.newLabel()
	b.fragment("fall through", []label{m, mm}, func() {
		b.emit(cbpf.LoadAbs(16))
	})
	b.place(m)
	b.place(mm)
	b.ret(0)
	if _, err := b.finish(); err == nil || !strings.Contains(err.Error(), "falls through") {
		t.Errorf("fall through: %v", err)
	}

	b = &builder{}
	m, mm = b.newLabel(), b.newLabel()
	b.fragment("own exit", []label{m, mm}, func() {
		b.place(m)
		b.ja(mm)
	})
	b.place(mm)
	b.ret(0)
	if _, err := b.finish(); err == nil || !strings.Contains(err.Error(), "placed its exit") {
		t.Errorf("placing an exit: %v", err)
	}
}

// TestFormats checks each output format: text reassembles to the same
// programs, JSON decodes, Go parses, C names DENY_REST.
func TestFormats(t *testing.T) {
	p := parse(t, `version: 1
default: deny
rules:
  - ops: [SOCKET]
    action: allow
    when: {socket.family: [AF_INET, AF_INET6], socket.type: SOCK_STREAM}
  - ops: [READ]
    action: allow
`)
	plan := mustCompile(t, p, Options{Kernel: k70, DenyRest: true})
	text := plan.Text()
	sections := strings.Split(text, "\n; registration ")[1:]
	if len(sections) != len(plan.Registrations) {
		t.Fatalf("%d sections for %d registrations:\n%s", len(sections), len(plan.Registrations), text)
	}
	for i, s := range sections {
		got, err := asm.Assemble([]byte(s[strings.Index(s, "\n")+1:]), "plan.s")
		if err != nil {
			t.Fatalf("reassembling registration %d: %v\n%s", i+1, err, s)
		}
		want := plan.Registrations[i].Prog.Instructions()
		if len(got) != len(want) {
			t.Fatalf("registration %d reassembles to %d instructions, want %d", i+1, len(got), len(want))
		}
		for j := range got {
			if got[j] != want[j] {
				t.Errorf("registration %d pc %d: %v, want %v", i+1, j, got[j], want[j])
			}
		}
	}
	js, err := plan.Format("json")
	if err != nil {
		t.Fatal(err)
	}
	var decoded jsonPlan
	if err := json.Unmarshal(js, &decoded); err != nil || len(decoded.Registrations) != 2 || decoded.Registrations[1].Flags != abi.FilterDenyRest {
		t.Errorf("json: %v %+v", err, decoded)
	}
	src, err := plan.Format("go")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.ParseFile(token.NewFileSet(), "plan.go", src, 0); err != nil {
		t.Errorf("go: %v\n%s", err, src)
	}
	c, _ := plan.Format("c")
	if !strings.Contains(string(c), ".flags = IO_URING_BPF_FILTER_DENY_REST") || !strings.Contains(string(c), "IORING_OP_SOCKET") {
		t.Errorf("c:\n%s", c)
	}
	if _, err := plan.Format("yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestNormalisation checks conditions on socket.type and open.flags
// ignore SOCK_NONBLOCK|SOCK_CLOEXEC and O_LARGEFILE in requests as the
// evaluator does; conditions whose values name those bits (which the
// parser refuses, but the model can hold) do not compile.
func TestNormalisation(t *testing.T) {
	const largefile, creat, nonblock = 0o100000, 0o100, 0o4000
	conds := []policy.Cond{
		{Field: "open.flags", Op: policy.HasAny, Values: []uint64{largefile}},
		{Field: "open.flags", Op: policy.HasAny, Values: []uint64{largefile | creat}},
		{Field: "open.flags", Op: policy.HasAll, Values: []uint64{largefile | creat}},
		{Field: "open.flags", Op: policy.HasAll, Values: []uint64{creat}},
		{Field: "open.flags", Op: policy.HasNone, Values: []uint64{largefile}},
		{Field: "open.flags", Op: policy.Masked, Values: []uint64{largefile | creat, largefile}},
		{Field: "open.flags", Op: policy.Masked, Values: []uint64{largefile | creat, creat}},
		{Field: "open.flags", Op: policy.Eq, Values: []uint64{creat}},
		{Field: "open.flags", Op: policy.Eq, Values: []uint64{creat | largefile}},
		{Field: "open.flags", Op: policy.Range, Values: []uint64{0x7000, 0x9000}},
		{Field: "socket.type", Op: policy.Eq, Values: []uint64{1}},
		{Field: "socket.type", Op: policy.Eq, Values: []uint64{1 | nonblock}},
		{Field: "socket.type", Op: policy.HasAny, Values: []uint64{nonblock}},
		{Field: "socket.type", Op: policy.In, Values: []uint64{1, 2, 5}},
		{Field: "socket.type", Op: policy.Gt, Values: []uint64{3}},
	}
	for _, c := range conds {
		op := abi.OpOpenat
		if c.Field == "socket.type" {
			op = abi.OpSocket
		}
		p := &policy.Policy{Version: 1, Default: policy.Deny, Rules: []policy.Rule{{Ops: []abi.Opcode{op}, Action: policy.Allow, Conds: []policy.Cond{c}}}}
		if verr := p.Validate(); verr != nil {
			// Values that name normalised bits: the parser refuses
			// them, and so does Compile.
			if _, err := Compile(p, Options{Kernel: k70}); err == nil {
				t.Errorf("%s %v %#x: Validate says %v, but Compile accepted it", c.Field, c.Op, c.Values, verr)
			}
			continue
		}
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			plan := mustCompile(t, p, Options{Kernel: k70, ByteOrder: bo})
			for _, v := range []uint64{0, 1, 2, 5, creat, largefile, creat | largefile, 1 | nonblock, 2 | nonblock | 0o2000000, 0x7fff, 0x8000, 0x9001} {
				q := policy.Request{Op: op, Open: abi.OpenData{Flags: v}, Socket: abi.SocketData{Type: uint32(v)}}
				if got, want := plan.Decide(q.Ctx(bo)).Allow, p.Decide(q).Allow; got != want {
					t.Errorf("%s %v %#x, value %#o (%v): plan %v, evaluator %v", c.Field, c.Op, c.Values, v, bo, got, want)
				}
			}
		}
	}
}

// TestCompileRefusesInvalid checks that a policy built in Go that Validate
// refuses does not compile: it would otherwise become a meaningless filter.
func TestCompileRefusesInvalid(t *testing.T) {
	allowNop := func(c ...policy.Cond) []policy.Rule {
		return []policy.Rule{{Ops: []abi.Opcode{abi.OpNop}, Action: policy.Allow, Conds: c}}
	}
	for _, tc := range []struct {
		name string
		p    *policy.Policy
		want string
	}{
		{"nil", nil, "no policy"},
		{"no version", &policy.Policy{Default: policy.Deny}, "unsupported policy version 0"},
		{"empty range", &policy.Policy{Version: 1, Rules: allowNop(policy.Cond{Field: "user_data", Op: policy.Range})}, "needs 2 values, has 0"},
		{"empty set", &policy.Policy{Version: 1, Rules: allowNop(policy.Cond{Field: "user_data", Op: policy.In})}, "has no values"},
		{"socket field on OPENAT", &policy.Policy{Version: 1, Rules: []policy.Rule{{Ops: []abi.Opcode{abi.OpOpenat}, Action: policy.Allow,
			Conds: []policy.Cond{{Field: "socket.family", Op: policy.Eq, Values: []uint64{2}}}}}}, "socket.family exists only for SOCKET"},
		{"bad rule action", &policy.Policy{Version: 1, Rules: []policy.Rule{{Ops: []abi.Opcode{abi.OpNop}, Action: 7}}}, "action 7 is neither deny nor allow"},
		{"bad default", &policy.Policy{Version: 1, Default: 2}, "default action 2"},
		{"no opcodes", &policy.Policy{Version: 1, Rules: []policy.Rule{{Action: policy.Allow}}}, "names no opcodes"},
		{"unknown opcode", &policy.Policy{Version: 1, Rules: []policy.Rule{{Ops: []abi.Opcode{200}, Action: policy.Allow}}}, "unknown opcode 200"},
		{"value too wide", &policy.Policy{Version: 1, Rules: []policy.Rule{{Ops: []abi.Opcode{abi.OpSocket}, Action: policy.Allow,
			Conds: []policy.Cond{{Field: "socket.family", Op: policy.Eq, Values: []uint64{1 << 40}}}}}}, "out of range"},
		{"unknown register op", &policy.Policy{Version: 1, Register: &policy.Register{Allow: []abi.RegisterOp{200}}}, "unknown register operation 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.p, Options{Kernel: k70})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRestrictions: a register section compiles to a task restriction set
// that allows the listed operations plus REGISTER_RESTRICTIONS and
// REGISTER_BPF_FILTER, every SQE opcode and flag; no section, no set.
func TestRestrictions(t *testing.T) {
	p := &policy.Policy{Version: 1, Default: policy.Deny, Register: &policy.Register{Allow: []abi.RegisterOp{abi.RegOpProbe}}}
	plan := mustCompile(t, p, Options{Kernel: k70})
	r := plan.Restrictions
	if r == nil {
		t.Fatal("no restrictions")
	}
	for op := range abi.RegisterOp(abi.RegisterOpLast) {
		want := op == abi.RegOpProbe || op == abi.RegOpRestrictions || op == abi.RegOpBPFFilter
		if r.AllowsRegister(op) != want {
			t.Errorf("%v allowed %v, want %v", op, r.AllowsRegister(op), want)
		}
	}
	enc := r.Encode()
	if len(enc) != 3+abi.OpLast+1 || enc[len(enc)-1] != (abi.Restriction{Op: abi.RestrictSQEFlagsAllowed, Value: abi.IOSQEValidFlagsMask}) {
		t.Errorf("Encode: %d entries, last %+v", len(enc), enc[len(enc)-1])
	}
	if js, err := plan.JSON(); err != nil || !strings.Contains(string(js), `"register_ops": [`) || !strings.Contains(plan.Text(), "task restrictions, registered first: register ops REGISTER_PROBE REGISTER_RESTRICTIONS REGISTER_BPF_FILTER") {
		t.Errorf("formats: %v\n%s\n%s", err, js, plan.Text())
	}
	if plan.Empty() {
		t.Error("a plan with restrictions is empty")
	}
	empty := mustCompile(t, &policy.Policy{Version: 1, Default: policy.Allow}, Options{Kernel: k70})
	if empty.Restrictions != nil || !empty.Empty() || !empty.Restrictions.AllowsRegister(abi.RegOpSendMsgRing) {
		t.Errorf("no register section: restrictions %v, empty %v", empty.Restrictions, empty.Empty())
	}
}
