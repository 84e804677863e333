package kerneltest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/cbpf"
)

// Differential tests: the kernel is the judge of ringfence's checker
// (cbpf.Check) and emulator (cbpf.Program.Run).
//
// Environment (forwarded into the VM by the harness):
//
//	RINGFENCE_KT_SEED=N              replay a run (printed as seed=N)
//	RINGFENCE_KT_CHECK_PROGRAMS=N    random programs for checker parity
//	RINGFENCE_KT_VERDICT_PROGRAMS=N  random programs for verdict parity
//	RINGFENCE_KT_CONTEXTS=N          requests per verdict-parity program
const (
	envSeed            = "RINGFENCE_KT_SEED"
	envCheckPrograms   = "RINGFENCE_KT_CHECK_PROGRAMS"
	envVerdictPrograms = "RINGFENCE_KT_VERDICT_PROGRAMS"
	envContexts        = "RINGFENCE_KT_CONTEXTS"
)

// envInt returns the integer in environment variable name, or def.
func envInt(t testing.TB, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// seed returns the run's seed and logs it so the run can be replayed.
func seed(t testing.TB) uint64 {
	s := envInt(t, envSeed, uint64(time.Now().UnixNano()))
	t.Logf("seed=%d (replay with %s=%d)", s, envSeed, s)
	return s
}

// rawProgram formats prog for a failure message: instructions, and the
// raw bytes as hex (struct sock_filter array, native order).
func rawProgram(prog []cbpf.Instruction) string {
	var b strings.Builder
	for i, in := range prog {
		if i == 24 && len(prog) > 32 {
			fmt.Fprintf(&b, "  ... %d more\n", len(prog)-i)
			break
		}
		fmt.Fprintf(&b, "  %4d %v\n", i, in)
	}
	raw := cbpf.Encode(prog, binary.NativeEndian)
	if len(raw) > 256 {
		raw = raw[:256]
	}
	fmt.Fprintf(&b, "  raw %s", hex.EncodeToString(raw))
	return b.String()
}

// mismatches collects differences and fails the test with the first few.
type mismatches struct {
	t     testing.TB
	n     int
	shown int
}

func (m *mismatches) add(format string, args ...any) {
	m.t.Helper()
	m.n++
	if m.shown < 8 {
		m.shown++
		m.t.Errorf(format, args...)
	}
}
