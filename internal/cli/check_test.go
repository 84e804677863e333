package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

// runPolicyCmd runs ringfence with args in-process.
func runPolicyCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(&env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const riskyPolicy = "version: 1\ndefault: deny\nrules:\n  - ops: [URING_CMD]\n    action: allow\n"

func TestCheckCommand(t *testing.T) {
	bad := writeTemp(t, "bad.yaml", "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKT]\n    action: alow\n")
	risky := writeTemp(t, "risky.yaml", riskyPolicy)
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"example", "", []string{"check", "../../examples/storage-engine.yaml"}, exitOK,
			[]string{"storage-engine.yaml: valid: 9 rules, default deny, needs Linux 7.0; 0 warnings"}, ""},
		{"needs 7.2", "", []string{"check", "../../examples/web-server.yaml"}, exitOK,
			[]string{"warning: connect.family needs Linux 7.2", "[needs-7.2]", "[send-address]", "needs Linux 7.2; 2 warnings"}, ""},
		{"warnings", "", []string{"check", risky}, exitOK,
			[]string{"risky.yaml:4:5: warning: rule 1 allows URING_CMD", "1 warning"}, ""},
		{"strict after", "", []string{"check", risky, "--strict"}, exitDenied, []string{"[risky-allow]"}, ""},
		{"strict before", "", []string{"check", "-strict", risky}, exitDenied, []string{"[risky-allow]"}, ""},
		{"strict clean", "", []string{"check", "--strict", "../../examples/build-sandbox.yaml"}, exitOK, []string{"0 warnings"}, ""},
		{"invalid", "", []string{"check", bad}, exitDenied, []string{
			"bad.yaml:4:11: error: unknown opcode \"SOCKT\"; did you mean SOCKET?",
			"bad.yaml:5:13: error: action must be allow or deny",
			"invalid: 2 errors"}, ""},
		{"stdin", riskyPolicy, []string{"check", "-"}, exitOK, []string{"<stdin>:4:5: warning:"}, ""},
		{"missing file", "", []string{"check", "/nonexistent/p.yaml"}, exitUsage, nil, "no such file"},
		{"no args", "", []string{"check"}, exitUsage, nil, "usage: ringfence check"},
		{"two args", "", []string{"check", "a", "b"}, exitUsage, nil, "usage: ringfence check"},
		{"help", "", []string{"check", "-h"}, exitOK, []string{"usage: ringfence check [--arch ARCH] [--caps CAPS] [--json] [--kernel VERSION]"}, ""},
		{"bad flag", "", []string{"check", "--nope", risky}, exitUsage, nil, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, out, errs := runPolicyCmd(t, tt.stdin, tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", tt.name, code, tt.code, out, errs)
		}
		for _, s := range tt.stdout {
			if !strings.Contains(out, s) {
				t.Errorf("%s: stdout lacks %q:\n%s", tt.name, s, out)
			}
		}
		if tt.stderr != "" && !strings.Contains(errs, tt.stderr) {
			t.Errorf("%s: stderr lacks %q:\n%s", tt.name, tt.stderr, errs)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	risky := writeTemp(t, "risky.yaml", riskyPolicy)
	code, out, _ := runPolicyCmd(t, "", "check", "--json", risky)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var got checkJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !got.Valid || got.Rules != 1 || got.Default != "deny" || got.Needs != "7.0" || len(got.Errors) != 0 ||
		len(got.Warnings) != 1 || got.Warnings[0].Code != "risky-allow" || got.Warnings[0].Line != 4 ||
		got.Warnings[0].Rule == nil || *got.Warnings[0].Rule != 1 {
		t.Errorf("unexpected JSON: %s", out)
	}
	code, _, _ = runPolicyCmd(t, "", "check", "--json", "-", "--strict")
	if code != exitDenied {
		t.Errorf("empty stdin: exit %d, want %d", code, exitDenied)
	}
	code, out, _ = runPolicyCmd(t, "version: 1\ndefault: nope\n", "check", "--json", "-")
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitDenied || got.Valid ||
		len(got.Errors) != 1 || got.Errors[0].Line != 2 || got.Errors[0].Col != 10 {
		t.Errorf("invalid policy JSON (exit %d): %s", code, out)
	}
}

func TestTestCommand(t *testing.T) {
	failing := writeTemp(t, "f.cases.yaml", `cases:
  - name: raw socket
    request: {op: SOCKET, socket.family: AF_INET, socket.type: SOCK_RAW}
    expect: allow
  - name: tcp
    request: {op: SOCKET, socket.family: AF_INET, socket.type: SOCK_STREAM}
    expect: allow
    rule: unix sockets
  - name: passes
    request: {op: READ}
    expect: allow
`)
	badCases := writeTemp(t, "b.cases.yaml", "cases:\n  - {request: {op: SOCKT}, expect: allow}\n")
	web := "../../examples/web-server.yaml"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"examples pass", []string{"test", web, "../../examples/web-server.cases.yaml"}, exitOK,
			[]string{"web-server.cases.yaml: 24 cases, 24 passed, 0 failed (reference evaluator and compiled plan for Linux 7.2, both byte orders)"}, ""},
		{"reference only", []string{"test", "--reference-only", web, "../../examples/web-server.cases.yaml"}, exitOK,
			[]string{"24 passed, 0 failed (reference evaluator only)"}, ""},
		{"newer kernel", []string{"test", "--kernel", "7.3", "../../examples/build-sandbox.yaml", "../../examples/build-sandbox.cases.yaml"}, exitOK,
			[]string{"19 passed, 0 failed (reference evaluator and compiled plan for Linux 7.3, both byte orders)"}, ""},
		{"kernel too old", []string{"test", "--kernel", "7.0", web, "../../examples/web-server.cases.yaml"}, exitUsage, nil,
			"web-server.yaml:54:23: connect.family needs Linux 7.2 or later"},
		{"bad kernel", []string{"test", "--kernel", "seven", web, "../../examples/web-server.cases.yaml"}, exitUsage, nil,
			"bad kernel version"},
		{"verbose", []string{"test", "-v", "../../examples/storage-engine.yaml", "../../examples/storage-engine.cases.yaml"}, exitOK,
			[]string{"ok   a drained write is refused: deny by rule 1 (\"no drains\") at line 27"}, ""},
		{"failures", []string{"test", web, failing}, exitDenied, []string{
			"FAIL raw socket (" + failing + ":2:5)",
			"request: op=SOCKET socket.family=AF_INET socket.type=SOCK_RAW socket.protocol=IPPROTO_IP",
			"expected allow, got deny by the default (deny)",
			"FAIL tcp",
			`expected the decision from rule 4 ("unix sockets") at line 43, got it from rule 3 ("tcp sockets") at line 35`,
			"3 cases, 1 passed, 2 failed"}, ""},
		{"bad cases", []string{"test", web, badCases}, exitUsage, nil, `b.cases.yaml:2:20: unknown opcode "SOCKT"; did you mean SOCKET?`},
		{"bad policy", []string{"test", badCases, badCases}, exitUsage, nil, "unknown key \"cases\" in policy"},
		{"usage", []string{"test", web}, exitUsage, nil, "usage: ringfence test"},
	}
	for _, tt := range tests {
		code, out, errs := runPolicyCmd(t, "", tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", tt.name, code, tt.code, out, errs)
		}
		for _, s := range tt.stdout {
			if !strings.Contains(out, s) {
				t.Errorf("%s: stdout lacks %q:\n%s", tt.name, s, out)
			}
		}
		if tt.stderr != "" && !strings.Contains(errs, tt.stderr) {
			t.Errorf("%s: stderr lacks %q:\n%s", tt.name, tt.stderr, errs)
		}
	}
}

// TestRunCasesReportsPlanDisagreement feeds runCases a plan that disagrees
// with the policy (a hand-made filter allowing every SOCKET), as a compiler
// bug would, and checks the case fails with that explanation.
func TestRunCasesReportsPlanDisagreement(t *testing.T) {
	p, err := policy.Parse([]byte("version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_UNIX\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := policy.ParseCases([]byte("cases:\n  - name: udp\n    request: {op: SOCKET, socket.family: AF_INET, socket.type: SOCK_DGRAM}\n    expect: deny\n  - name: unix\n    request: {op: SOCKET, socket.family: AF_UNIX}\n    expect: allow\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	allowAll, err := cbpf.Check([]cbpf.Instruction{cbpf.Ret(1)})
	if err != nil {
		t.Fatal(err)
	}
	k := abi.Version{Major: 7, Minor: 0}
	bad := &compile.Plan{Kernel: k, ByteOrder: binary.LittleEndian, Policy: p,
		Registrations: []compile.Registration{{Op: abi.OpSocket, Prog: allowAll}}}
	var out bytes.Buffer
	failed := runCases(&out, p, cases, []casePlan{{"the broken plan", bad, binary.LittleEndian, k}}, false)
	want := "FAIL udp (c.yaml:2:5)\n     request: op=SOCKET socket.family=AF_INET socket.type=SOCK_DGRAM socket.protocol=IPPROTO_IP\n" +
		"     the broken plan allows, unlike the reference evaluator (deny by the default (deny)): a compiler bug\n"
	if failed != 1 || out.String() != want {
		t.Errorf("runCases = %d,\n%s\nwant 1,\n%s", failed, out.String(), want)
	}
	// The real compiler agrees on both cases.
	good, err := compile.Compile(p, compile.Options{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if n := runCases(&out, p, cases, []casePlan{{"the compiled plan", good, binary.LittleEndian, k}}, true); n != 0 {
		t.Errorf("compiled plan: %d failures:\n%s", n, out.String())
	}
}
