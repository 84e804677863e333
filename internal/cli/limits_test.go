package cli

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// endless is an input that never ends, like /dev/zero.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestInputLimits: every command that reads a whole file or standard
// input refuses one larger than 16 MiB, with a clear error, instead of
// reading it all (check /dev/zero used to grow past 4 GB).
func TestInputLimits(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	for _, args := range [][]string{
		{"check", "/dev/zero"},
		{"check", "-"},
		{"compile", "/dev/zero"},
		{"disasm", "/dev/zero"},
		{"asm", "/dev/zero"},
		{"emu", "/dev/zero", "--ctx", "opcode=NOP"},
		{"test", "/dev/zero", "/dev/zero"},
		{"run", "--policy", "/dev/zero", "--", "true"},
	} {
		var out, errb bytes.Buffer
		var in io.Reader = endless{}
		code := run(&env{stdin: in, stdout: &out, stderr: &errb}, args)
		if code == exitOK || !strings.Contains(errb.String(), "input too large: more than 16 MiB") {
			t.Errorf("%v: exit %d, stderr %q; want the size error", args, code, errb.String())
		}
	}
}

// TestEmuJSONLEndless: emu --jsonl on an endless line (/dev/zero) stops
// with an error instead of reading forever.
func TestEmuJSONLEndless(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(&env{stdin: endless{}, stdout: &out, stderr: &errb}, []string{"emu", "--jsonl"})
	if code != exitUsage || !strings.Contains(errb.String(), "input line 1 is longer than 1048576 bytes") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
