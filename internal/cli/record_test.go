package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Usage errors of record, monitor and run --log-denials are found before
// anything is traced or run.
func TestRecordMonitorUsage(t *testing.T) {
	dir := t.TempDir()
	notRecorded := filepath.Join(dir, "hand.yaml")
	os.WriteFile(notRecorded, []byte("version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"record", "--", "true"}, 125, "give the policy file to write with -o FILE"},
		{[]string{"record", "-o", "x.yaml"}, 125, "no command given"},
		{[]string{"record", "-o", "x.yaml", "--connect-networks", "24", "--", "true"}, 125, "--connect-networks \"24\": want V4,V6"},
		{[]string{"record", "-o", "x.yaml", "--connect-networks", "33,64", "--", "true"}, 125, "want V4,V6"},
		{[]string{"record", "-o", "x.yaml", "--kernel", "seven", "--", "true"}, 125, "--kernel"},
		{[]string{"record", "-o", "x.yaml", "--merge", notRecorded, "--", "true"}, 125, "hand.yaml:4:5: rule 1: SOCKET without conditions would allow every SOCKET"},
		{[]string{"record", "-o", "x.yaml", "--merge", filepath.Join(dir, "missing.yaml"), "--", "true"}, 125, "missing.yaml"},
		{[]string{"record", "-o", "x.yaml", "--", "/nonexistent/prog"}, 127, "not run"},
		{[]string{"monitor"}, 2, "give one of --pid, --cgroup, --container or --all"},
		{[]string{"monitor", "--all", "--pid", "1"}, 2, "give one of --pid, --cgroup, --container or --all"},
		{[]string{"monitor", "--container", "abc"}, 2, "want 12 to 64 lowercase hex digits"},
		{[]string{"monitor", "--all", "--format", "xml"}, 2, "--format \"xml\": want text or json"},
		{[]string{"run", "--log-denials", "--log-format", "yaml", "--", "true"}, 125, "--log-format \"yaml\": want text or json"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI("", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("ringfence %s: exit %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.want)
		}
	}
	if _, err := os.Stat("x.yaml"); err == nil {
		t.Error("a failed record wrote x.yaml")
	}
}

func TestLogDenialsFlag(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		set  bool
		path string
	}{
		{[]string{"true"}, true, ""},
		{[]string{"/var/log/d.log"}, true, "/var/log/d.log"},
		{[]string{"false"}, false, ""},
	} {
		var f optionalFile
		for _, s := range tt.in {
			f.Set(s)
		}
		if f.set != tt.set || f.path != tt.path {
			t.Errorf("Set(%q): %+v", tt.in, f)
		}
	}
}
