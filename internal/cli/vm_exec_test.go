package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// requireQEMU skips a test that boots a kernel unless asked
// (vmtest.RequireExternal).
func requireQEMU(t *testing.T) {
	t.Helper()
	vmtest.RequireExternal(t, "boots a kernel under QEMU", vm.QEMU, "apt-get", "dpkg-deb", "go")
}

// The README's main job, "vm exec 7.3 -- run --profile default --
// ringfence probe", run in a real 7.3 kernel: the program runs and sees
// its own task filtered. On 6.19 the same command must refuse to start the
// program (exit 125, with the reason).
func TestVMExecMainJob(t *testing.T) {
	requireQEMU(t)
	tests := []struct {
		kernel   string
		wantExit int
		wantOut  string // in stdout
		wantErr  string // in stdout (the guest's stderr is on its console)
	}{
		{"7.3", 0, "task filtered      yes", ""},
		{"6.19", 125, "", "was not run"},
	}
	for _, tt := range tests {
		t.Run(tt.kernel, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(&env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb},
				[]string{"vm", "exec", tt.kernel, "--", "run", "--profile", "default", "--", "ringfence", "probe"})
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantExit, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(out.String(), tt.wantErr) {
				t.Errorf("output does not contain %q and %q:\n%s", tt.wantOut, tt.wantErr, out.String())
			}
		})
	}
}

func TestVMExecUsage(t *testing.T) {
	for _, args := range [][]string{{"vm", "exec"}, {"vm", "exec", "7.3"}, {"vm", "exec", "7.3", "--"}} {
		var out, errb bytes.Buffer
		if code := run(&env{stdout: &out, stderr: &errb}, args); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(errb.String(), "vm exec") {
			t.Errorf("%q: no usage message: %q", args, errb.String())
		}
	}
}
