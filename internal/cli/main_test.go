package cli

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets this test binary play ringfence's part when a command
// re-executes ringfence: run and verify exec os.Executable() with an
// internal command name ("__exec-check", "__verify-child") as the first
// argument, which a test binary would otherwise take for test flags.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "__") {
		os.Exit(Main(os.Stdin, os.Stdout, os.Stderr, os.Args[1:]))
	}
	os.Exit(m.Run())
}
