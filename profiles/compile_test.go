package profiles_test

import (
	"encoding/binary"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// TestProfilesCompile: every profile compiles for Linux 7.0 to 7.3, and the
// plan decides as the reference evaluator does for every opcode.
func TestProfilesCompile(t *testing.T) {
	for _, name := range profiles.Names() {
		data, _ := profiles.Get(name)
		p, err := policy.Parse(data, name)
		if err != nil {
			t.Fatal(err)
		}
		for minor := 0; minor <= 3; minor++ {
			k := abi.Version{Major: 7, Minor: minor}
			plan, err := compile.Compile(p, compile.Options{Kernel: k, ByteOrder: binary.LittleEndian})
			if err != nil {
				t.Errorf("%s for %v: %v", name, k, err)
				continue
			}
			for op := abi.Opcode(0); op < abi.OpLast; op++ {
				r := policy.Request{Op: op}
				if want, got := p.Decide(r).Allow, plan.Decide(r.CtxFor(binary.LittleEndian, k)).Allow; want != got {
					t.Errorf("%s for %v: %v: plan allow=%v, policy allow=%v", name, k, op, got, want)
				}
			}
			if minor == 0 {
				t.Logf("%s: %d registrations", name, len(plan.Registrations))
			}
		}
	}
}
