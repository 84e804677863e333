package ringfence

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

func TestPolicyFromOCI(t *testing.T) {
	dir := t.TempDir()
	const file = "version: 1\ndefault: allow\nrules:\n  - ops: [URING_CMD]\n    action: deny\n"
	if err := os.MkdirAll(filepath.Join(dir, "pol"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pol", "p.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, OCINone), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "pol", "p.yaml")
	cases := []struct {
		name, config string
		found        bool
		def          policy.Action // expected default when found without error
		err          string
	}{
		{"no annotations", `{"ociVersion":"1.2.0"}`, false, 0, ""},
		{"other annotation", `{"annotations":{"org.example":"x"}}`, false, 0, ""},
		{"inline yaml", `{"annotations":{"org.ringfence.policy":"version: 1\ndefault: allow\nrules: []\n"}}`, true, policy.Allow, ""},
		{"inline json", `{"annotations":{"org.ringfence.policy":"{\"version\":1,\"default\":\"deny\",\"rules\":[]}"}}`, true, policy.Deny, ""},
		{"relative path", `{"annotations":{"org.ringfence.policy":"pol/p.yaml"}}`, true, policy.Allow, ""},
		{"absolute path", `{"annotations":{"org.ringfence.policy":"` + abs + `"}}`, true, policy.Allow, ""},
		{"profile", `{"annotations":{"org.ringfence.policy":"profile:deny-all"}}`, true, policy.Deny, ""},
		{"unknown profile", `{"annotations":{"org.ringfence.policy":"profile:nope"}}`, true, 0, "unknown profile"},
		{"missing file", `{"annotations":{"org.ringfence.policy":"missing.yaml"}}`, true, 0, "missing.yaml"},
		{"empty", `{"annotations":{"org.ringfence.policy":"  "}}`, true, 0, "is empty"},
		// "none" names no policy: as if the annotation were absent, never
		// a file named none (there is one in dir).
		{"none", `{"annotations":{"org.ringfence.policy":"none"}}`, false, 0, ""},
		{"none spaced", `{"annotations":{"org.ringfence.policy":" none\n"}}`, false, 0, ""},
		{"bad inline", `{"annotations":{"org.ringfence.policy":"version: 1\ndefault: maybe\n"}}`, true, 0, "annotation org.ringfence.policy:"},
		{"bad json", `{"annotations":`, false, 0, "config.json"},
	}
	for _, c := range cases {
		p, found, err := PolicyFromOCIConfig([]byte(c.config), dir)
		if found != c.found {
			t.Errorf("%s: found=%v, want %v", c.name, found, c.found)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if found && p.Default != c.def {
			t.Errorf("%s: default %v, want %v", c.name, p.Default, c.def)
		}
		if !found && p != nil {
			t.Errorf("%s: policy without annotation", c.name)
		}
	}
	// The bundle form reads dir/config.json.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"annotations":{"org.ringfence.policy":"pol/p.yaml"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, found, err := PolicyFromOCI(dir, dir)
	if err != nil || !found || p.Default != policy.Allow {
		t.Fatalf("PolicyFromOCI: %v %v %v", p, found, err)
	}
	if _, _, err := PolicyFromOCI(filepath.Join(dir, "nope"), dir); err == nil {
		t.Fatal("PolicyFromOCI of a missing bundle succeeded")
	}
}

func FuzzPolicyFromOCIConfig(f *testing.F) {
	f.Add([]byte(`{"annotations":{"org.ringfence.policy":"version: 1\ndefault: allow\nrules: []\n"}}`))
	f.Add([]byte(`{"annotations":{"org.ringfence.policy":"profile:default"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, config []byte) {
		p, found, err := PolicyFromOCIConfig(config, t.TempDir())
		if err == nil && found && p == nil {
			t.Fatal("found, no error, no policy")
		}
		if !found && p != nil {
			t.Fatal("policy without annotation")
		}
	})
}

func TestResolvePolicyValue(t *testing.T) {
	dir := t.TempDir()
	const file = "version: 1\ndefault: allow\nrules: []\n"
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	inline := "version: 1\ndefault: deny\nrules: []\n"
	cases := []struct {
		value, source, err string
	}{
		{inline, inline, ""},
		{"profile:storage", "flattened", ""}, // storage extends base
		{"p.yaml", file, ""},
		{filepath.Join(dir, "p.yaml"), file, ""},
		{"version: 1\ndefault: maybe\n", "", "here:2:"},
		{"nope.yaml", "", `here names "nope.yaml"`},
		// none names no policy, even with a file of that name.
		{" none ", "", `here is "none", which names no policy`},
	}
	if err := os.WriteFile(filepath.Join(dir, OCINone), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		p, src, err := ResolvePolicyValue(c.value, "here", dir)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.value, err, c.err)
			}
			continue
		}
		if c.source == "flattened" {
			checkFlattened(t, c.value, p, src)
			continue
		}
		if err != nil || p == nil || string(src) != c.source {
			t.Errorf("%q: policy %v source %q err %v; want source %q", c.value, p != nil, src, err, c.source)
		}
	}
}

// refuseLoader finds no base: a policy it parses must stand alone.
type refuseLoader struct{}

func (refuseLoader) Load(ref, from string) ([]byte, string, error) {
	return nil, "", fmt.Errorf("no bases here")
}

// checkFlattened: src stands alone (no extends) and decides every opcode,
// and sockets of every family, as p.
func checkFlattened(t *testing.T, value string, p *policy.Policy, src []byte) {
	t.Helper()
	if p == nil || len(p.Extends) == 0 {
		t.Fatalf("%q: policy %v does not extend anything", value, p)
	}
	back, err := policy.ParseWith(src, "source", refuseLoader{})
	if err != nil {
		t.Fatalf("%q: the source does not stand alone: %v\n%s", value, err, src)
	}
	for op := abi.Opcode(0); op < abi.OpLast; op++ {
		for fam := uint32(0); fam < 48; fam++ {
			r := policy.Request{Op: op, Socket: abi.SocketData{Family: fam, Type: 1}}
			if p.Decide(r) != back.Decide(r) {
				t.Fatalf("%q: %s decided differently by the source", value, r)
			}
		}
	}
}

// TestResolvePolicyValueExtends: a policy that extends others is handed
// on flattened, so that a process inside the container, which would
// resolve a file reference in its own file system, runs what was checked;
// an inline policy's relative references are resolved in the policy
// directory.
func TestResolvePolicyValueExtends(t *testing.T) {
	dir := t.TempDir()
	base := "version: 1\ndefault: deny\nrules:\n  - ops: [READ]\n    action: allow\n"
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	ext := "version: 1\nextends: [base.yaml, default]\nrules:\n  - ops: [SOCKET]\n    action: deny\n    when:\n      socket.family: AF_INET6\n"
	if err := os.WriteFile(filepath.Join(dir, "ext.yaml"), []byte(ext), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{ext, "ext.yaml", "profile:storage"} {
		p, src, err := ResolvePolicyValue(v, "here", dir)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		checkFlattened(t, v, p, src)
	}
	if _, _, err := ResolvePolicyValue("version: 1\nextends: missing.yaml\n", "here", dir); err == nil ||
		!strings.Contains(err.Error(), `here:2:10: extends "missing.yaml": `+filepath.Join(dir, "missing.yaml")+": no such file in the policy directory") {
		t.Errorf("missing base: %v", err)
	}
}

// TestResolvePolicyValueConfined: files named by a value, or extended by
// it, directly or through other files, are read only from the policy
// directory, only when regular, and errors never quote a file outside it.
func TestResolvePolicyValueConfined(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "policies")
	const secret = "SECRET-CONTENT-OUTSIDE"
	outside := filepath.Join(top, "outside.yaml")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(outside, secret+": [\n")
	const good = "version: 1\ndefault: allow\nrules: []\n"
	write(filepath.Join(dir, "p.yaml"), good)
	write(filepath.Join(dir, "sub", "q.yaml"), good)
	write(filepath.Join(dir, "sub", "ext.yaml"), "version: 1\nextends: q.yaml\n")    // relative to itself
	write(filepath.Join(dir, "leak.yaml"), "version: 1\nextends: ../outside.yaml\n") // transitive escape
	write(filepath.Join(dir, "leakabs.yaml"), "version: 1\nextends: "+outside+"\n")
	if err := os.Symlink(outside, filepath.Join(dir, "out.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("p.yaml", filepath.Join(dir, "in.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(top, filepath.Join(dir, "updir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, value, dir, err string
	}{
		{"relative", "p.yaml", dir, ""},
		{"subdirectory", "sub/q.yaml", dir, ""},
		{"absolute inside", filepath.Join(dir, "p.yaml"), dir, ""},
		{"symlink inside", "in.yaml", dir, ""},
		{"dot-dot inside", "sub/../p.yaml", dir, ""},
		{"file extends file", "sub/ext.yaml", dir, ""},
		{"inline extends file", "version: 1\nextends: sub/q.yaml\n", dir, ""},
		{"inline extends profile", "version: 1\nextends: default\n", dir, ""},
		{"profile", "profile:storage", dir, ""},
		{"profile without dir", "profile:storage", "", ""},
		{"absolute outside", outside, dir, "outside the policy directory"},
		{"dot-dot escape", "../outside.yaml", dir, "outside the policy directory"},
		{"symlink out", "out.yaml", dir, "must resolve inside the policy directory"},
		{"symlinked directory out", "updir/outside.yaml", dir, "must resolve inside the policy directory"},
		{"fifo", "fifo.yaml", dir, "not a regular file"},
		{"device", "null", "/dev", "not a regular file"},
		{"directory", "sub", dir, "not a regular file"},
		{"no directory", "p.yaml", "", "no policy directory"},
		{"inline extends outside", "version: 1\nextends: " + outside + "\n", dir, "outside the policy directory"},
		{"inline extends escape", "version: 1\nextends: ../outside.yaml\n", dir, "outside the policy directory"},
		{"inline extends symlink out", "version: 1\nextends: out.yaml\n", dir, "must resolve inside the policy directory"},
		{"inline extends fifo", "version: 1\nextends: fifo.yaml\n", dir, "not a regular file"},
		{"inline extends without dir", "version: 1\nextends: p.yaml\n", "", "no policy directory"},
		{"file extends escape", "leak.yaml", dir, "outside the policy directory"},
		{"file extends outside", "leakabs.yaml", dir, "outside the policy directory"},
	}
	for _, c := range cases {
		p, _, err := ResolvePolicyValue(c.value, "annotation x", c.dir)
		if c.err == "" {
			if err != nil || p == nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: %q accepted, want an error containing %q", c.name, c.value, c.err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.err) || !strings.Contains(msg, "annotation x") || strings.Contains(msg, secret) {
			t.Errorf("%s: error %q: want one naming the annotation and containing %q, never the outside file's content", c.name, msg, c.err)
		}
	}
}
