package escape

import (
	"os"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestMain dispatches the parts this test binary plays when it is
// re-executed: "ringfence ARGS" (the CLI), ringfence's own internal
// commands ("__exec-check"), and "role NAME ARGS" (attackers, launchers,
// victims; see roles).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch a := os.Args[1]; {
		case a == "ringfence":
			os.Exit(cli.Main(os.Stdin, os.Stdout, os.Stderr, os.Args[2:]))
		case strings.HasPrefix(a, "__"):
			os.Exit(cli.Main(os.Stdin, os.Stdout, os.Stderr, os.Args[1:]))
		case a == "role" && len(os.Args) > 2:
			os.Exit(runRole(os.Args[2], os.Args[3:]))
		}
	}
	os.Exit(m.Run())
}
