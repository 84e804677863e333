package compile

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/examples"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/policy"
)

// longestPath returns the number of instructions executed on the longest
// path of prog (jumps only go forward, so one backward sweep).
func longestPath(prog *cbpf.Program) int {
	ins := prog.Instructions()
	best := make([]int, len(ins)+1)
	for pc := len(ins) - 1; pc >= 0; pc-- {
		in := ins[pc]
		switch {
		case in.IsReturn():
			best[pc] = 1
		case in.Op == cbpf.ClassJMP|cbpf.JmpJA:
			best[pc] = 1 + best[pc+1+int(in.K)]
		case in.IsConditionalJump():
			best[pc] = 1 + max(best[pc+1+int(in.Jt)], best[pc+1+int(in.Jf)])
		default:
			best[pc] = 1 + best[pc+1]
		}
	}
	return best[0]
}

// figure is one row of the figures table.
type figure struct {
	name                  string
	regs, insns           int     // registrations, instructions in the plan
	worst                 int     // longest path of any filter, instructions
	avg                   float64 // average instructions executed per request (requests whose opcode has a conditional filter)
	worstCmp              int     // most comparisons executed by any sampled request
	naiveInsns, naiveWort int
	naiveAvg              float64
}

// measure compiles p both ways and runs reqs through each plan.
func measure(t testing.TB, name string, p *policy.Policy, k abi.Version, reqs []policy.Request) figure {
	f := figure{name: name}
	bo := binary.LittleEndian
	for _, naive := range []bool{false, true} {
		plan := mustCompile(t, p, Options{Kernel: k, ByteOrder: bo, Naive: naive})
		insns, worst := plan.Instructions(), 0
		for _, r := range plan.Registrations {
			worst = max(worst, longestPath(r.Prog))
		}
		total, n, worstCmp := 0, 0, 0
		for _, q := range reqs {
			v := plan.Decide(q.CtxFor(bo, k))
			if want := p.Decide(q).Allow; v.Allow != want {
				t.Fatalf("%s naive=%v: %v: plan %v, evaluator %v", name, naive, q, v.Allow, want)
			}
			if len(v.Runs) == 0 || v.Runs[0].Stub || plan.Registrations[v.Runs[0].Reg].Prog.Len() == 1 {
				continue
			}
			for _, run := range v.Runs {
				total += len(run.Path)
				worstCmp = max(worstCmp, comparisons(plan.Registrations[run.Reg].Prog, run.Path))
			}
			n++
		}
		avg := 0.0
		if n > 0 {
			avg = float64(total) / float64(n)
		}
		if naive {
			f.naiveInsns, f.naiveWort, f.naiveAvg = insns, worst, avg
		} else {
			f.regs, f.insns, f.worst, f.avg, f.worstCmp = len(plan.Registrations), insns, worst, avg, worstCmp
		}
	}
	return f
}

// exampleInputs returns the example policies with a request sample each:
// the cases file's requests and requests generated from the policy's own
// values (biased to boundaries, as in the equivalence test).
func exampleInputs(t testing.TB) (names []string, pols []*policy.Policy, reqs [][]policy.Request) {
	files, err := fs.Glob(examples.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".cases.yaml") {
			continue
		}
		data, _ := fs.ReadFile(examples.FS, file)
		p, err := policy.Parse(data, file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var rs []policy.Request
		cname := strings.TrimSuffix(file, ".yaml") + ".cases.yaml"
		if cdata, err := fs.ReadFile(examples.FS, cname); err == nil {
			cases, err := policy.ParseCases(cdata, cname)
			if err != nil {
				t.Fatalf("%s: %v", cname, err)
			}
			for _, c := range cases {
				rs = append(rs, c.Request)
			}
		}
		g := policygen.New(7, 8)
		ops := p.Ops()
		for range 5000 {
			q := g.Request(p, nil)
			q.Op = ops[g.Pick(len(ops))]
			rs = append(rs, q)
		}
		names = append(names, strings.TrimSuffix(file, ".yaml"))
		pols = append(pols, p)
		reqs = append(reqs, rs)
	}
	if len(names) == 0 {
		t.Fatal("no example policies")
	}
	return names, pols, reqs
}

// set256 is a policy with one 256-value set, for the compiler's cost
// bound (at most 10 comparisons on the worst path).
func set256() (*policy.Policy, []policy.Request) {
	r := rand.New(rand.NewPCG(9, 10))
	var vals []uint64
	var reqs []policy.Request
	for range 256 {
		v := uint64(r.Uint32())
		vals = append(vals, v)
		for d := range uint64(3) {
			reqs = append(reqs, policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Protocol: uint32(v + d - 1)}})
		}
	}
	for range 1000 {
		reqs = append(reqs, policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Protocol: r.Uint32()}})
	}
	p := &policy.Policy{Version: 1, Default: policy.Deny, Rules: []policy.Rule{{
		Ops: []abi.Opcode{abi.OpSocket}, Action: policy.Allow,
		Conds: []policy.Cond{{Field: "socket.protocol", Op: policy.In, Values: vals}},
	}}}
	return p, reqs
}

// TestFigures prints the README table (run with -v): for each example
// policy and a 256-value set, the plan's registrations and instructions,
// the longest path of any filter and the average path executed over
// the cases and generated requests, against the naive compile. It also
// checks the optimised plan is never bigger or slower than the naive one.
func TestFigures(t *testing.T) {
	names, pols, reqs := exampleInputs(t)
	var rows []figure
	for i := range names {
		rows = append(rows, measure(t, names[i], pols[i], pols[i].Needs(), reqs[i]))
	}
	p, rs := set256()
	rows = append(rows, measure(t, "256-value set", p, abi.FilterSince(), rs))
	var b strings.Builder
	b.WriteString("| policy | registrations | instructions (naive) | worst path (naive) | average path (naive) | most comparisons run |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d (%d) | %.1f (%.1f) | %d |\n",
			f.name, f.regs, f.insns, f.naiveInsns, f.worst, f.naiveWort, f.avg, f.naiveAvg, f.worstCmp)
		// Trees trade size for speed: the 256-value set may be bigger
		// than its chain of 256 jeq; the policies may not.
		if f.worst > f.naiveWort || f.avg > f.naiveAvg+1e-9 || f.insns > f.naiveInsns && f.name != "256-value set" {
			t.Errorf("%s: optimised plan worse than naive: %+v", f.name, f)
		}
	}
	t.Logf("figures (Linux target: the oldest each policy needs; little-endian):\n%s", b.String())
	if last := rows[len(rows)-1]; last.worstCmp > 10 {
		t.Errorf("256-value set: %d comparisons on a path, want at most 10", last.worstCmp)
	}
}

// BenchmarkCompile measures compiling each example policy.
func BenchmarkCompile(b *testing.B) {
	names, pols, _ := exampleInputs(b)
	for i := range names {
		b.Run(names[i], func(b *testing.B) {
			for b.Loop() {
				if _, err := Compile(pols[i], Options{Kernel: pols[i].Needs()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecide measures judging a request sample with the optimised and
// the naive plan in the emulator (ns per request).
func BenchmarkDecide(b *testing.B) {
	names, pols, reqs := exampleInputs(b)
	p, rs := set256()
	names, pols, reqs = append(names, "256-value-set"), append(pols, p), append(reqs, rs)
	for i := range names {
		for _, naive := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/naive=%v", names[i], naive), func(b *testing.B) {
				k := pols[i].Needs()
				plan := mustCompile(b, pols[i], Options{Kernel: k, Naive: naive})
				words := make([]cbpf.Words, len(reqs[i]))
				for j, q := range reqs[i] {
					words[j] = cbpf.WordsOf(q.CtxFor(binary.LittleEndian, k).Encode(binary.LittleEndian), binary.LittleEndian)
				}
				b.ResetTimer()
				n := 0
				for b.Loop() {
					plan.Allows(&words[n%len(words)])
					n++
				}
			})
		}
	}
}
