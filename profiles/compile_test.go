package profiles_test

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
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

// TestProfilesPlansUnchanged: the profiles rewritten as extends of "base"
// compile, for Linux 7.0 to 7.3 and both byte orders, to exactly the
// filters (opcodes, order, flags, pdu sizes, programs) of the flat files
// they replaced, kept in testdata/flat, and decide every opcode alike.
func TestProfilesPlansUnchanged(t *testing.T) {
	flats, _ := filepath.Glob("testdata/flat/*.yaml")
	if len(flats) != 3 {
		t.Fatalf("%d flat profiles, want 3", len(flats))
	}
	for _, path := range flats {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		flat, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := profiles.Get(name)
		comp, err := policy.Parse(data, "profile "+name)
		if err != nil {
			t.Fatal(err)
		}
		if len(flat.Extends) != 0 || len(comp.Extends) == 0 {
			t.Fatalf("%s: flat extends %v, built-in extends %v", name, flat.Extends, comp.Extends)
		}
		for minor := 0; minor <= 3; minor++ {
			for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				k := abi.Version{Major: 7, Minor: minor}
				a, err1 := compile.Compile(flat, compile.Options{Kernel: k, ByteOrder: bo})
				b, err2 := compile.Compile(comp, compile.Options{Kernel: k, ByteOrder: bo})
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %v %v", name, err1, err2)
				}
				if len(a.Registrations) != len(b.Registrations) {
					t.Fatalf("%s %v: %d registrations, flat had %d", name, k, len(b.Registrations), len(a.Registrations))
				}
				for i, ra := range a.Registrations {
					rb := b.Registrations[i]
					if ra.Op != rb.Op || ra.Flags != rb.Flags || ra.PDUSize != rb.PDUSize ||
						!reflect.DeepEqual(ra.Prog.Instructions(), rb.Prog.Instructions()) {
						t.Errorf("%s %v %v: registration %d: %v flags %#x pdu %d %v, flat: %v flags %#x pdu %d %v", name, k, bo, i,
							rb.Op, rb.Flags, rb.PDUSize, rb.Prog.Instructions(), ra.Op, ra.Flags, ra.PDUSize, ra.Prog.Instructions())
					}
				}
				if !reflect.DeepEqual(a.Restrictions, b.Restrictions) {
					t.Errorf("%s %v: restrictions differ", name, k)
				}
			}
		}
		for op := abi.Opcode(0); op < abi.OpLast; op++ {
			r := policy.Request{Op: op}
			if flat.Decide(r).Allow != comp.Decide(r).Allow {
				t.Errorf("%s: %v decided differently", name, op)
			}
		}
	}
}
