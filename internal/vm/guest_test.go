package vm

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// TestGuestRun boots 7.3 with the Debian userland (building the image if
// it is not cached) and runs two steps: a real program under ringfence,
// and a shell command that fails. Each step's output and exit status must
// come back, and Failed must name the failing one.
func TestGuestRun(t *testing.T) {
	vmtest.RequireExternal(t, "builds the guest userland and boots a kernel under QEMU", QEMU, "apt-get", "dpkg-deb", "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	g := &Guest{Kernel: "7.3"}
	r, err := g.Run(ctx,
		Shell("fio", "ringfence run --profile storage -- fio --name=r --filename=/tmp/f --size=1m --ioengine=io_uring --rw=randread --number_ios=16 --output-format=terse --terse-version=3 | cut -d';' -f1-3"),
		Shell("fails", "echo to stdout; echo to stderr >&2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || !r.Done {
		t.Fatalf("steps %d, done %v, problems %v\n%s", len(r.Steps), r.Done, r.Problems, r.Console)
	}
	if s := r.Steps[0]; s.Exit != 0 || !regexp.MustCompile(`(?m)^3;fio-3\.\d+;r$`).Match(s.Output) {
		t.Errorf("fio step: exit %d, output %q", s.Exit, s.Output)
	}
	if s := r.Steps[1]; s.Exit != 3 || !strings.Contains(string(s.Output), "to stdout\nto stderr") {
		t.Errorf("failing step: exit %d, output %q", s.Exit, s.Output)
	}
	if f := r.Failed(); f != "step fails: exit 3" {
		t.Errorf("Failed() = %q", f)
	}
}
