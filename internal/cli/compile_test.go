package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

func TestCompileCommand(t *testing.T) {
	outFile := filepath.Join(t.TempDir(), "plan.json")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"text", []string{"compile", "../../examples/build-sandbox.yaml"}, exitOK,
			[]string{"; ringfence plan for Linux 7.0, little-endian:", "always denied", "ret #0",
				"; opcodes from 65 up to the running kernel's last: denied when applied"}, ""},
		{"deny-rest", []string{"compile", "--deny-rest", "../../examples/build-sandbox.yaml"}, exitOK,
			[]string{"flags IO_URING_BPF_FILTER_DENY_REST", "always allowed", "ret #1"}, ""},
		{"big-endian", []string{"compile", "--endian", "big", "../../examples/web-server.yaml"}, exitOK,
			[]string{"Linux 7.2, big-endian", ".endian big"}, ""},
		{"c", []string{"compile", "--format", "c", "../../examples/storage-engine.yaml"}, exitOK,
			[]string{"static struct io_uring_bpf_filter ringfence_plan[] = {", "#define RINGFENCE_DENY_OPCODES_FROM 65"}, ""},
		{"c, DENY_REST", []string{"compile", "--format", "c", "--deny-rest", "../../examples/storage-engine.yaml"}, exitOK,
			[]string{"IO_URING_BPF_FILTER_DENY_REST"}, ""},
		{"go", []string{"compile", "../../examples/storage-engine.yaml", "--format=go"}, exitOK,
			[]string{"package ringfenceplan", "cbpf.Instruction{"}, ""},
		{"naive", []string{"compile", "--naive", "../../examples/web-server.yaml"}, exitOK, []string{"registration"}, ""},
		{"too old for CONNECT fields", []string{"compile", "--kernel", "7.0", "../../examples/web-server.yaml"}, exitDenied, nil,
			"needs Linux 7.2 or later (CONNECT carries no data for filters before 7.2); target is 7.0"},
		{"too old for filters", []string{"compile", "--kernel", "6.19", "../../examples/build-sandbox.yaml"}, exitDenied, nil,
			"io_uring BPF filters need Linux 7.0"},
		{"bad kernel", []string{"compile", "--kernel", "seven", "../../examples/build-sandbox.yaml"}, exitUsage, nil, "bad kernel version"},
		{"bad format", []string{"compile", "--format", "yaml", "../../examples/build-sandbox.yaml"}, exitUsage, nil, "unknown format \"yaml\""},
		{"bad endian", []string{"compile", "--endian", "middle", "../../examples/build-sandbox.yaml"}, exitUsage, nil, "--endian: unknown byte order"},
		{"output file", []string{"compile", "--format", "json", "-o", outFile, "../../examples/web-server.yaml"}, exitOK, nil, ""},
		{"no args", []string{"compile"}, exitUsage, nil, "usage: ringfence compile"},
		{"help", []string{"compile", "-h"}, exitOK, []string{"usage: ringfence compile"}, ""},
		{"missing file", []string{"compile", "/nonexistent.yaml"}, exitUsage, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicyCmd(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Kernel          string `json:"kernel"`
		DenyOpcodesFrom int    `json:"deny_opcodes_from"`
		Registrations   []struct {
			Op      string `json:"op"`
			Flags   uint32 `json:"flags"`
			PDUSize uint8  `json:"pdu_size"`
			Program []struct {
				Code uint16 `json:"code"`
			} `json:"program"`
		} `json:"registrations"`
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		t.Fatalf("-o json: %v", err)
	}
	if plan.Kernel != "7.2" || plan.DenyOpcodesFrom != abi.OpLast {
		t.Errorf("json plan: kernel %s, deny_opcodes_from %d", plan.Kernel, plan.DenyOpcodesFrom)
	}
	for _, r := range plan.Registrations {
		if r.Op == "CONNECT" && r.PDUSize != abi.PDUSizeConnect {
			t.Errorf("CONNECT pdu_size %d", r.PDUSize)
		}
	}
}

// TestCompileRunning compiles for the running kernel: it either works or
// fails because the machine's kernel is too old, with the message saying so.
func TestCompileRunning(t *testing.T) {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/osrelease: %v", err)
	}
	v, err := abi.ParseVersion(strings.TrimSpace(string(rel)))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runPolicyCmd(t, "", "compile", "--kernel", "running", "../../examples/build-sandbox.yaml")
	if v.Less(abi.FilterSince()) {
		if code != exitDenied || !strings.Contains(stderr, "need Linux 7.0; target is "+v.String()) {
			t.Errorf("kernel %v: exit %d, stderr %s", v, code, stderr)
		}
		return
	}
	if code != exitOK || !strings.Contains(stdout, "Linux "+v.String()) {
		t.Errorf("kernel %v: exit %d, stdout %s, stderr %s", v, code, stdout, stderr)
	}
}

func TestExplainCommand(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"allowed by a rule", []string{"explain", "../../examples/web-server.yaml", "--sqe", "op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=IPPROTO_TCP"}, exitOK,
			[]string{"decision: allow", `by:       rule 3 ("tcp sockets") at ../../examples/web-server.yaml:35:5`,
				"plan for Linux 7.2 (little-endian): allow", "registration 18: SOCKET (45)", "ld [socket.family]", "ret #1"}, ""},
		{"denied by the default in the filter", []string{"explain", "--sqe", "op=SOCKET family=AF_PACKET type=SOCK_RAW", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: deny", "by:       the default (deny) at ../../examples/web-server.yaml:21:10", "plan for Linux 7.2 (little-endian): deny", "ret #0"}, ""},
		{"denied by its own filter", []string{"explain", "--sqe", "op=URING_CMD", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: deny", "URING_CMD (46): always denied", "ret #0"}, ""},
		{"denied by the stub", []string{"explain", "--deny-rest", "--sqe", "op=URING_CMD", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: deny", "the deny stub left by DENY_REST on registration"}, ""},
		{"allowed with no filter", []string{"explain", "--sqe", "op=READ", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: allow", "no filter is registered for READ: the kernel lets it run without running one"}, ""},
		{"connect", []string{"explain", "--sqe", "op=CONNECT family=AF_INET addr=10.20.3.4 port=8080", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: allow", `rule 5 ("application servers")`, "ld [connect.port]"}, ""},
		{"big-endian", []string{"explain", "--endian", "big", "--sqe", "op=CONNECT family=AF_INET addr=10.20.3.4 port=9000", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: deny", "(big-endian): deny"}, ""},
		{"full field names and numbers", []string{"explain", "--sqe", "op=45 socket.family=2 socket.type=1 socket.protocol=0", "../../examples/web-server.yaml"}, exitOK,
			[]string{"decision: allow"}, ""},
		// emu's form of the same request; the type printed by name with
		// its flags.
		{"emu's syntax", []string{"explain", "--sqe", "opcode=SOCKET socket.family=AF_INET socket.type=2049 socket.protocol=6", "../../examples/web-server.yaml"}, exitOK,
			[]string{"request:  op=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM|SOCK_NONBLOCK socket.protocol=IPPROTO_TCP", "decision: allow"}, ""},
		{"bad request", []string{"explain", "--sqe", "op=SOCKT", "../../examples/web-server.yaml"}, exitUsage, nil, "did you mean SOCKET?"},
		{"no sqe", []string{"explain", "../../examples/web-server.yaml"}, exitUsage, nil, "usage: ringfence explain"},
		{"kernel too old", []string{"explain", "--kernel", "7.1", "--sqe", "op=NOP", "../../examples/web-server.yaml"}, exitDenied, nil, "needs Linux 7.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicyCmd(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			if strings.Contains(stderr, "DISAGREEMENT") {
				t.Errorf("evaluator and plan disagree:\n%s", stderr)
			}
		})
	}
}
