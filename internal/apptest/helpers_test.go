package apptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	ringfencelib "github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
)

// unconfined is the baseline "profile": the program runs without
// ringfence.
const unconfined = "unconfined"

// under returns argv run by the real "ringfence run" under the built-in
// profile, or argv itself for the baseline.
func under(profile string, argv ...string) []string {
	if profile == unconfined {
		return argv
	}
	run := []string{"ringfence", "run"}
	if errors.Is(ringfencelib.ExecKeepsFilters(), ringfencelib.ErrExecDropsFilters) {
		// Linux 7.0 without the fix, where run refuses by default: these
		// applications do not try to shed their filters (internal/escape
		// tries, and checks the refusal).
		run = append(run, "--allow-exec-drop")
	}
	return append(append(run, "--profile", profile, "--"), argv...)
}

// needFilters skips a confined case on a kernel where "ringfence run" is
// not a confinement: without io_uring BPF filters (6.19) it refuses to
// start programs, and on 7.0 it runs them only with a warning that the
// kernel drops task filters at execve (both tested in internal/cli). The
// baseline runs everywhere.
func needFilters(t *testing.T, profile string) {
	t.Helper()
	vmtest.Require(t)
	if profile == unconfined {
		return
	}
	if err := kernel.Supported(); err != nil {
		t.Skipf("no io_uring BPF filters on this kernel (%v): ringfence run refuses, tested in internal/cli", err)
	}
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if k.Less(abi.Version{Major: 7, Minor: 1}) {
		t.Skipf("Linux %v drops task filters at execve: the application tests run on 7.1 and later", k)
	}
}

// result is a finished command.
type result struct {
	argv     []string
	out      string // stdout and stderr, interleaved
	exit     int    // -1 if killed by a signal or the deadline
	signal   string // the signal that killed it, if any
	timedOut bool
}

func (r result) String() string {
	s := fmt.Sprintf("%s: exit %d", strings.Join(r.argv, " "), r.exit)
	if r.signal != "" {
		s += ", killed by " + r.signal
	}
	if r.timedOut {
		s += ", TIMED OUT"
	}
	return s + "\n" + tail(r.out, 30)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// runCmd runs argv with extra environment entries and a deadline; a
// program that hangs is killed and reported as timed out, so no test waits
// forever on a program that does not notice a failed request.
func runCmd(t *testing.T, timeout time.Duration, env []string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/tmp"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	r := result{argv: argv, out: out.String(), exit: cmd.ProcessState.ExitCode(), timedOut: ctx.Err() != nil}
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
		r.signal = cmd.ProcessState.String()
	}
	return r
}

// mustRun runs argv and fails the test unless it exits 0.
func mustRun(t *testing.T, timeout time.Duration, env []string, argv ...string) string {
	t.Helper()
	r := runCmd(t, timeout, env, argv...)
	if r.exit != 0 || r.timedOut {
		t.Fatalf("%s", r)
	}
	return r.out
}
