package cli

import (
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

const (
	mobyProfile   = "../../testdata/seccomp/moby-default.json"
	podmanProfile = "../../testdata/seccomp/podman-seccomp.json"
)

// sampleRequests returns requests of every opcode with fields drawn from
// the constants policies use, for comparing two policies' decisions.
func sampleRequests(seed int64, n int) []policy.Request {
	rng := rand.New(rand.NewSource(seed))
	pick := func(vs ...uint64) uint64 { return vs[rng.Intn(len(vs))] }
	var out []policy.Request
	for i := 0; i < n; i++ {
		r := policy.Request{Op: abi.Opcode(rng.Intn(abi.OpLast)), UserData: pick(0, 1, 7), SQEFlags: uint8(pick(0, 1, 0x10))}
		r.Socket = abi.SocketData{Family: uint32(pick(0, 1, 2, 10, 16, 17, 38, 39, 40, 41, 44)),
			Type: uint32(pick(1, 2, 3, 5, 0x801)), Protocol: uint32(pick(0, 6, 9, 17))}
		r.Open = abi.OpenData{Flags: pick(0, 1, 2, 0o100, 0o1000, 0o2000, 0o20200000) | policy.OpenFlagsIgnore, Mode: pick(0, 0o644)}
		r.Connect = abi.ConnectData{Family: policy.AFInet, Port: uint16(pick(80, 443, 8080))}
		out = append(out, r)
	}
	return out
}

// TestShow: the flattened policy "show" prints, in YAML and JSON, parses
// back to a policy that decides every sampled request as the one given,
// for the built-in profiles (which extend "base") and a file that extends
// one and narrows it.
func TestShow(t *testing.T) {
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext.yaml")
	if err := os.WriteFile(ext, []byte("version: 1\nextends: [network-server]\nrules:\n  - ops: [SOCKET]\n    action: deny\n    when:\n      socket.family: AF_INET6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reqs := sampleRequests(1, 20000)
	for _, arg := range []string{"profile:default", "profile:storage", "profile:network-server", "profile:base", ext} {
		orig, _, _, err := (&env{}).loadPolicy(arg)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"yaml", "json"} {
			args := []string{"show", arg}
			if format == "json" {
				args = append(args, "--json")
			}
			code, out, errs := runCLI("", args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errs)
			}
			if strings.Contains(out, "extends") {
				t.Errorf("%v: the flattened policy still extends:\n%s", args, out)
			}
			back, err := policy.Parse([]byte(out), "shown."+format)
			if err != nil {
				t.Fatalf("%v: does not parse back: %v\n%s", args, err, out)
			}
			if len(back.Rules) != len(orig.Rules) || back.Default != orig.Default {
				t.Errorf("%v: %d rules, default %v; want %d, %v", args, len(back.Rules), back.Default, len(orig.Rules), orig.Default)
			}
			for _, r := range reqs {
				if a, b := orig.Decide(r), back.Decide(r); a != b {
					t.Fatalf("%v: %s: composed %v by %d, shown %v by %d", args, r, a.Action(), a.Rule, b.Action(), b.Rule)
				}
			}
		}
	}
	if code, _, errs := runCLI("", "show", filepath.Join(dir, "missing.yaml")); code != 2 || errs == "" {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nextends: [nope.yaml]\n"), 0o644)
	if code, _, errs := runCLI("", "show", bad); code != 1 || !strings.Contains(errs, bad+`:2:11: extends "nope.yaml"`) {
		t.Errorf("missing base: exit %d, %q", code, errs)
	}
}

// TestFromSeccomp: from-seccomp writes a policy that parses, denies
// AF_VSOCK sockets under Docker's and Podman's profiles and allows
// AF_INET ones; notes go to standard error; an invalid profile is an
// error with its position.
func TestFromSeccomp(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		args []string
	}{
		{mobyProfile, nil},
		{podmanProfile, []string{"--runtime", "podman"}},
		{podmanProfile, []string{"--caps", "CAP_AUDIT_WRITE,net_raw", "--arch", "arm64", "--kernel", "7.3"}},
	} {
		out := filepath.Join(dir, "p.yaml")
		args := append([]string{"from-seccomp", tc.file, "-o", out}, tc.args...)
		code, stdout, errs := runCLI("", args...)
		if code != 0 || stdout != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %s", args, code, stdout, errs)
		}
		if !strings.Contains(errs, "note: "+tc.file+": URING_CMD: denied") {
			t.Errorf("%v: notes:\n%s", args, errs)
		}
		p, err := policy.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		for s, want := range map[string]bool{"op=SOCKET family=AF_VSOCK type=SOCK_STREAM": false,
			"op=SOCKET family=AF_INET type=SOCK_STREAM": true, "op=READ": true, "op=URING_CMD": false} {
			r, _ := policy.ParseRequest(s)
			if p.Decide(r).Allow != want {
				t.Errorf("%v: %s allowed=%v", args, s, !want)
			}
		}
	}
	code, stdout, _ := runCLI("", "from-seccomp", mobyProfile, "--json", "--quiet")
	var doc map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &doc) != nil || doc["default"] != "deny" {
		t.Errorf("--json: exit %d, %.200s", code, stdout)
	}
	code, _, errs := runCLI(`{"defaultAction": "SCMP_ACT_ALOW"}`, "from-seccomp", "-")
	if code != 1 || !strings.Contains(errs, `<stdin>:1:19: unknown action "SCMP_ACT_ALOW"; did you mean SCMP_ACT_ALLOW?`) {
		t.Errorf("invalid profile: exit %d, %s", code, errs)
	}
	if code, _, _ := runCLI("", "from-seccomp", mobyProfile, "--runtime", "lxc"); code != 2 {
		t.Errorf("--runtime lxc: exit %d", code)
	}
}

// TestCheckSeccomp: check --seccomp flags a hand-written policy that
// allows AF_VSOCK sockets under Docker's profile, naming both rules, and
// passes the built-in default profile.
func TestCheckSeccomp(t *testing.T) {
	dir := t.TempDir()
	vsock := filepath.Join(dir, "vsock.yaml")
	os.WriteFile(vsock, []byte("version: 1\nextends: default\nrules:\n  - name: vsock too\n    ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_VSOCK\n"), 0o644)
	code, out, errs := runCLI("", "check", "--seccomp", mobyProfile, vsock)
	want := vsock + `: bypass: op=SOCKET socket.family=AF_VSOCK socket.type=0 socket.protocol=IPPROTO_IP: allowed by rule 1 ("vsock too") at line 4, but the seccomp profile denies socket: defaultAction SCMP_ACT_ERRNO (` + mobyProfile + `:2:19)`
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "1 bypass of the seccomp profile") {
		t.Errorf("exit %d\n%s\n%s\nwant a line\n%s", code, out, errs, want)
	}
	code, out, _ = runCLI("", "check", vsock, "--seccomp", podmanProfile, "--runtime", "podman", "--json")
	var res checkJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if code != 1 || len(res.Bypasses) != 1 || res.Bypasses[0].Syscall != "socket" || *res.Bypasses[0].Rule != 1 ||
		res.Bypasses[0].ProfilePos != podmanProfile+":960:3" || res.Bypasses[0].Verdict != "denied" {
		t.Errorf("--json: exit %d, %+v", code, res.Bypasses)
	}
	for _, p := range []string{"profile:default", "profile:storage"} {
		if code, out, _ := runCLI("", "check", "--seccomp", mobyProfile, p); code != 0 || !strings.Contains(out, "0 bypasses") {
			t.Errorf("%s: exit %d\n%s", p, code, out)
		}
	}
	if code, _, _ := runCLI("", "check", "--seccomp", filepath.Join(dir, "none.json"), vsock); code != 2 {
		t.Errorf("missing profile: exit %d", code)
	}
}
