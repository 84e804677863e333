// Package vmtest is for tests that need a real kernel: they run inside
// ringfence's test VMs ("ringfence vm test") and skip, saying why, on the
// host.
package vmtest

import (
	"os"
	"testing"

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
