package compile

import (
	"encoding/binary"
	"hash/fnv"
	"io/fs"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/examples"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/policy"
)

// FuzzCompile parses arbitrary policy text; whatever parses must compile
// for Linux 7.2 (or fail only because a filter is too long), and the plan
// must decide requests generated from the policy as the evaluator does.
func FuzzCompile(f *testing.F) {
	files, _ := fs.Glob(examples.FS, "*.yaml")
	for _, file := range files {
		if !strings.HasSuffix(file, ".cases.yaml") {
			data, _ := fs.ReadFile(examples.FS, file)
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\ndefault: allow\nrules:\n  - ops: [CONNECT]\n    action: deny\n    when: {connect.addr: {not_cidr: [\"::/0\"]}, connect.port: {not_in: [1, 65535]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		k := abi.Version{Major: 7, Minor: 2}
		plan, err := Compile(p, Options{Kernel: k})
		if err != nil {
			if strings.Contains(err.Error(), "the kernel allows at most") {
				return
			}
			t.Fatalf("compile: %v", err)
		}
		h := fnv.New64a()
		h.Write(data)
		g := policygen.New(h.Sum64(), 1)
		for range 200 {
			r := g.Request(p, nil)
			w := cbpf.WordsOf(r.CtxFor(binary.LittleEndian, k).Encode(binary.LittleEndian), binary.LittleEndian)
			if got, want := plan.Allows(&w), p.Decide(r).Allow; got != want {
				t.Fatalf("%v: plan %v, evaluator %v", r, got, want)
			}
		}
	})
}
