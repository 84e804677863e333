package compile

import (
	"encoding/binary"
	"flag"
	"fmt"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/policy"
)

var (
	long = flag.Bool("long", false, "run the long equivalence test (millions of policy/request pairs)")
	seed = flag.Uint64("seed", 1, "seed of the equivalence test's random policies and requests")
)

// TestEquivalence compiles random policies and checks that the plan, run by
// the emulator, decides random requests exactly as the reference evaluator
// does, for both byte orders, both kernels generations and the naive
// compile. With -long it runs millions of pairs.
func TestEquivalence(t *testing.T) {
	policies, requests := 600, 300
	if *long {
		policies, requests = 40000, 600
	}
	g := policygen.New(*seed, 2)
	pairs := 0
	for n := range policies {
		// Every other policy leaves out CONNECT's fields, and half of
		// those compile for 7.0, which does not show them to filters.
		o := policygen.Options{}
		if n%2 == 1 {
			o.Kernel = abi.Version{Major: 7, Minor: 0}
		}
		p := g.Policy(o)
		k := abi.Version{Major: 7, Minor: 2}
		if n%4 == 1 {
			k = abi.Version{Major: 7, Minor: 0}
		}
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, naive := range []bool{false, true} {
				if naive && n%5 != 0 {
					continue
				}
				plan, err := Compile(p, Options{Kernel: k, ByteOrder: bo, Naive: naive})
				if err != nil {
					t.Fatalf("policy %d: %v\n%s", n, err, dumpPolicy(p))
				}
				for range requests {
					r := g.Request(p, nil)
					want := p.Decide(r)
					w := cbpf.WordsOf(r.CtxFor(bo, k).Encode(bo), bo)
					if got := plan.Allows(&w); got != want.Allow {
						t.Fatalf("policy %d (%v, kernel %v, naive %v): request %+v: plan allows=%v, evaluator %+v\n%s\n%s",
							n, bo, k, naive, r, got, want, dumpPolicy(p), dumpPlan(plan, op(r)))
					}
					pairs++
				}
			}
		}
	}
	t.Logf("%d policy/request pairs agree (seed %d)", pairs, *seed)
}

func op(r policy.Request) abi.Opcode { return r.Op }

// dumpPolicy writes p as a policy file, for failure messages.
func dumpPolicy(p *policy.Policy) string {
	y, err := p.YAML()
	if err != nil {
		return fmt.Sprintf("(cannot write the policy: %v) %+v", err, p.Rules)
	}
	return string(y)
}

func dumpPlan(p *Plan, op abi.Opcode) string {
	s := ""
	for i, r := range p.Registrations {
		if r.Op != op {
			continue
		}
		s += fmt.Sprintf("registration %d: %s flags %d pdu %d\n", i, r.Comment, r.Flags, r.PDUSize)
		for pc, in := range r.Prog.Instructions() {
			s += fmt.Sprintf("  %3d %v\n", pc, in)
		}
	}
	return s
}
