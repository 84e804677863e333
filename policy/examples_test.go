package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/abi"
)

// examplePolicies returns the example policy files (not the cases files).
func examplePolicies(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".cases.yaml") {
			out = append(out, f)
		}
	}
	if len(out) < 3 {
		t.Fatalf("want at least 3 example policies, found %v", out)
	}
	return out
}

// TestExamples parses every example policy, checks it lints with no
// warning but the expected ones, and runs its cases file, which must exist
// and pass.
func TestExamples(t *testing.T) {
	allowed := map[string]map[string]bool{
		// It restricts CONNECT by address (7.2), and says the sends it
		// needs are not restricted so.
		"web-server.yaml": {"needs-7.2": true, "send-address": true},
	}
	for _, path := range examplePolicies(t) {
		base := filepath.Base(path)
		p, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		for _, d := range p.Lint() {
			if !allowed[base][d.Code] {
				t.Errorf("%s: unexpected lint finding %s", path, d)
			}
		}
		cases, err := LoadCases(strings.TrimSuffix(path, ".yaml") + ".cases.yaml")
		if err != nil {
			t.Errorf("%s: cases: %v", path, err)
			continue
		}
		if len(cases) < 10 {
			t.Errorf("%s: only %d cases", path, len(cases))
		}
		allows, denies := 0, 0
		for _, c := range cases {
			if _, diff := c.Check(p); diff != "" {
				t.Errorf("%s: case %q (%s): %s", path, c.Name, c.Pos, diff)
			}
			if c.Expect == Allow {
				allows++
			} else {
				denies++
			}
		}
		if allows == 0 || denies == 0 {
			t.Errorf("%s: cases must test both decisions (%d allow, %d deny)", path, allows, denies)
		}
	}
}

// yamlToJSON converts a YAML document into the JSON value the schema
// validator reads.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../schema/policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaAcceptsExamples validates every example policy and built-in
// profile against schema/policy.schema.json.
func TestSchemaAcceptsExamples(t *testing.T) {
	s := compileSchema(t)
	files := examplePolicies(t)
	profiles, _ := filepath.Glob("../profiles/*.yaml")
	for _, path := range append(files, profiles...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s does not validate against the schema: %v", path, err)
		}
	}
}

// TestSchemaExtends: the schema accepts what the parser accepts with
// extends (a name or a list, and then default may be left out).
func TestSchemaExtends(t *testing.T) {
	s := compileSchema(t)
	for _, src := range []string{
		"version: 1\nextends: default\n",
		"version: 1\nextends: [default, storage]\ndefault: deny\nrules: []\n",
	} {
		if _, err := Parse([]byte(src), "x.yaml"); err != nil {
			t.Errorf("%q: the parser rejects it: %v", src, err)
		}
		if err := s.Validate(yamlToJSON(t, []byte(src))); err != nil {
			t.Errorf("%q: the schema rejects it: %v", src, err)
		}
	}
}

// TestSchemaRejects checks the schema rejects what the parser rejects, for
// the mistakes a schema can see.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	head := "version: 1\ndefault: deny\nrules:\n"
	bad := map[string]string{
		"version 2":      "version: 2\ndefault: deny\n",
		"no default":     "version: 1\n",
		"unknown key":    "version: 1\ndefault: deny\nrulez: []\n",
		"bad action":     head + "  - {ops: [NOP], action: permit}\n",
		"no ops":         head + "  - {action: allow}\n",
		"empty ops":      head + "  - {ops: [], action: allow}\n",
		"unknown opcode": head + "  - {ops: [SOCKETT], action: allow}\n",
		"opcode number":  head + "  - {ops: [65], action: allow}\n",
		"unknown field":  head + "  - {ops: [SOCKET], action: allow, when: {socket.famly: 2}}\n",
		"unknown op":     head + "  - {ops: [NOP], action: allow, when: {user_data: {gte: 1}}}\n",
		"port range":     head + "  - {ops: [CONNECT], action: allow, when: {connect.port: 65536}}\n",
		"u8 range":       head + "  - {ops: [NOP], action: allow, when: {sqe_flags: 256}}\n",
		"range arity":    head + "  - {ops: [NOP], action: allow, when: {user_data: {range: [1]}}}\n",
		"masked keys":    head + "  - {ops: [NOP], action: allow, when: {user_data: {masked: {mask: 1}}}}\n",
		"cidr on port":   head + "  - {ops: [CONNECT], action: allow, when: {connect.port: {cidr: 10.0.0.0/8}}}\n",
		"eq on addr":     head + "  - {ops: [CONNECT], action: allow, when: {connect.addr: {eq: 1}}}\n",
		"rule key":       head + "  - {ops: [NOP], action: allow, whenn: {}}\n",
		"negative":       head + "  - {ops: [NOP], action: allow, when: {user_data: -1}}\n",
		"extends empty":  "version: 1\nextends: []\n",
		"extends twice":  "version: 1\nextends: [default, default]\n",
		"extends number": "version: 1\nextends: 3\n",
	}
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		src := bad[name]
		if _, err := Parse([]byte(src), "x.yaml"); err == nil {
			t.Errorf("%s: the parser accepts it", name)
		}
		if err := s.Validate(yamlToJSON(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}

// TestSchemaInStep checks the schema names exactly the opcodes of package
// abi and the fields and operators of this package.
func TestSchemaInStep(t *testing.T) {
	data, err := os.ReadFile("../schema/policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Opcode struct {
				OneOf []struct {
					Enum    []string `json:"enum"`
					Maximum *int     `json:"maximum"`
				} `json:"oneOf"`
			} `json:"opcode"`
			Rule struct {
				Properties struct {
					When struct {
						OneOf []struct {
							Properties map[string]json.RawMessage `json:"properties"`
						} `json:"oneOf"`
					} `json:"when"`
				} `json:"properties"`
			} `json:"rule"`
			Cond64 struct {
				OneOf []struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"oneOf"`
			} `json:"cond64"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var enum []string
	maxOp := -1
	for _, o := range doc.Defs.Opcode.OneOf {
		enum = append(enum, o.Enum...)
		if o.Maximum != nil {
			maxOp = *o.Maximum
		}
	}
	var want []string
	for _, o := range abi.Opcodes() {
		want = append(want, o.Name)
	}
	for _, o := range abi.Opcodes() {
		want = append(want, o.KernelName())
	}
	if strings.Join(enum, " ") != strings.Join(want, " ") {
		t.Errorf("schema opcode names differ from abi.Opcodes():\n%v\n%v", enum, want)
	}
	if maxOp != abi.OpLast-1 {
		t.Errorf("schema opcode maximum %d, want %d", maxOp, abi.OpLast-1)
	}
	var fields []string
	for _, o := range doc.Defs.Rule.Properties.When.OneOf {
		for k := range o.Properties {
			fields = append(fields, k)
		}
	}
	sort.Strings(fields)
	wantFields := fieldNames()
	sort.Strings(wantFields)
	if strings.Join(fields, " ") != strings.Join(wantFields, " ") {
		t.Errorf("schema fields %v, want %v", fields, wantFields)
	}
	var ops []string
	for _, o := range doc.Defs.Cond64.OneOf {
		for k := range o.Properties {
			ops = append(ops, k)
		}
	}
	sort.Strings(ops)
	var wantOps []string
	for _, o := range CmpOps() {
		if o != CIDR && o != NotCIDR {
			wantOps = append(wantOps, o.String())
		}
	}
	sort.Strings(wantOps)
	if strings.Join(ops, " ") != strings.Join(wantOps, " ") {
		t.Errorf("schema operators %v, want %v", ops, wantOps)
	}
}
