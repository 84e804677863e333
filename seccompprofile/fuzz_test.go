package seccompprofile

import (
	"os"
	"testing"
)

// FuzzParse: Parse never panics, and a profile it accepts can be derived
// and checked against its own derivation without a bypass.
func FuzzParse(f *testing.F) {
	for _, path := range []string{mobyFile, podmanFile} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 3, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "f.json")
		if err != nil {
			return
		}
		d, err := p.Derive(Options{})
		if err != nil {
			t.Fatalf("Derive: %v", err)
		}
		bs, err := Check(p, d.Policy, Options{})
		if err != nil || len(bs) != 0 {
			t.Fatalf("the derived policy bypasses its profile: %v %v", err, bs)
		}
	})
}
