package policy_test

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

// TestCompiledAgreesWithReference compiles random policies from this
// package's own generator (independent of package compile's tests) and
// checks the emulated plan decides random requests as Decide does, on both
// byte orders. The requests use small field values so that conditions hit.
func TestCompiledAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	policies, reqs := 400, 200
	if testing.Short() {
		policies = 100
	}
	k := abi.Version{Major: 7, Minor: 2}
	var ops []abi.Opcode
	for _, g := range policy.PropGroups {
		ops = append(ops, g...)
	}
	ops = append(ops, abi.OpWrite, abi.OpUringCmd)
	for i := 0; i < policies; i++ {
		p := policy.RandPolicy(rng)
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			plan, err := compile.Compile(p, compile.Options{Kernel: k, ByteOrder: bo})
			if err != nil {
				t.Fatalf("compile: %v\npolicy: %+v", err, p.Rules)
			}
			for j := 0; j < reqs; j++ {
				r := policy.RandRequest(rng, ops[rng.Intn(len(ops))])
				want := p.Decide(r)
				if got := plan.Decide(r.CtxFor(bo, k)); got.Allow != want.Allow {
					t.Fatalf("%v: %s: plan allow=%v, reference %+v (%s)\ndefault %s, rules: %+v",
						bo, r, got.Allow, want, p.Describe(want), p.Default, p.Rules)
				}
			}
		}
	}
}
