package compile

import (
	"encoding/binary"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/policy"
)

// TestPassStepsRegression runs the optimiser pass by pass on a policy the
// long equivalence test once caught being miscompiled (threading a way in
// with a masked A into a bit test, then threading that bit test's own way
// out as if A still held the raw word), checking every sqe_flags value
// after every step.
func TestPassStepsRegression(t *testing.T) {
	p := &policy.Policy{Version: 1, Default: policy.Deny, Rules: []policy.Rule{
		{Ops: []abi.Opcode{abi.OpUringCmd}, Action: policy.Allow, Conds: []policy.Cond{{Field: "sqe_flags", Op: policy.Masked, Values: []uint64{0xfe, 0}}}},
		{Ops: []abi.Opcode{abi.OpUringCmd}, Action: policy.Allow, Conds: []policy.Cond{{Field: "sqe_flags", Op: policy.HasNone, Values: []uint64{0x80}}, {Field: "sqe_flags", Op: policy.NotIn, Values: []uint64{5, 0xe1, 0x5a, 0, 0x16, 0xff}}}},
	}}
	c := &compiler{pol: p, opt: Options{Kernel: abi.Version{Major: 7, Minor: 0}, ByteOrder: binary.LittleEndian}}
	sp, _ := c.render(abi.OpUringCmd, false)
	for {
		changed := false
		for _, ps := range passes() {
			q, ch := ps.run(sp)
			if !ch {
				continue
			}
			changed = true
			prog := mustProg(t, q)
			for v := range 256 {
				r := policy.Request{Op: abi.OpUringCmd, SQEFlags: uint8(v)}
				w := cbpf.WordsOf(r.Ctx(binary.LittleEndian).Encode(binary.LittleEndian), binary.LittleEndian)
				if (prog.Run(&w) != 0) != p.Decide(r).Allow {
					t.Logf("before %s:", ps.name)
					st := aStates(sp)
					live := liveA(sp)
					for i, s := range sp {
						t.Logf("%2d %-14q live=%v %v t=%d f=%d", i, st[i], live[i], s.in, s.t, s.f)
					}
					t.Logf("after:")
					for i, s := range q {
						t.Logf("%2d %v t=%d f=%d", i, s.in, s.t, s.f)
					}
					t.Fatalf("pass %s broke value %#x", ps.name, v)
				}
			}
			sp = q
		}
		if !changed {
			break
		}
	}
}
