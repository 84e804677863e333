// Package vmtest is for tests that need a real kernel: they run inside
// ringfence's test VMs ("ringfence vm test") and skip, saying why, on the
// host.
package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vminit"
)

// InVM reports whether the test runs inside a ringfence test VM.
func InVM() bool { return os.Getenv(vminit.EnvVM) == "1" }

// Require skips the test unless it runs inside a ringfence test VM.
func Require(t testing.TB) {
	t.Helper()
	if !InVM() {
		t.Skip("needs a real kernel: runs inside the VM harness (go run ./cmd/ringfence vm test)")
	}
}

// Release returns the kernel release (uname -r) the harness meant to boot,
// or "" outside the VM.
func Release() string { return os.Getenv(vminit.EnvRelease) }

// EnvExternal is the environment variable that asks host tests to use
// what lies outside the Go toolchain: boot kernels under QEMU, fetch
// kernels and headers from Debian's archive, compile C with gcc. Unset,
// those tests skip, so a first "go test ./..." is quick and offline; set
// to 1 (as .ci/run does), they run, and a missing tool fails them.
const EnvExternal = "RINGFENCE_EXTERNAL_TESTS"

// RequireExternal skips the test unless RINGFENCE_EXTERNAL_TESTS=1 (and
// under -short). Asked for, it fails the test when one of tools is not on
// PATH. what says what the test would do, for the skip message.
func RequireExternal(t testing.TB, what string, tools ...string) {
	t.Helper()
	if os.Getenv(EnvExternal) != "1" {
		t.Skipf("%s: set %s=1 to run it", what, EnvExternal)
	}
	if testing.Short() {
		t.Skipf("-short: %s", what)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH (%s=1 asks for this test; .ci/run installs it)", tool, EnvExternal)
		}
	}
}

// WaitGone waits until no process whose command line contains s is left
// (in the guest: processes a test started that outlive its command, such
// as the denial log of "ringfence run"), and fails the test after timeout.
func WaitGone(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	for end := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		left := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && strings.Contains(string(b), s) {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d processes with %q in their command line still run after %v", left, s, timeout)
		}
	}
}

// Figure reports a count the test measured in the kernel (programs
// checked, requests compared, mismatches), for the per-kernel table that
// "ringfence vm test --markdown" prints: the harness sums the figures of
// one name over a kernel's tests. name is a column heading.
func Figure(t testing.TB, name string, n int) {
	t.Helper()
	t.Logf("%s %s=%d", vminit.FigureMarker, name, n)
}
