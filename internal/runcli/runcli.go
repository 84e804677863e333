// Package runcli implements the ringfence commands that touch the running
// kernel: "run", "probe" and "verify", and the internal commands they
// re-execute ringfence with ("__exec-check", "__verify-child"). Package
// main (cmd/ringfence) dispatches to them; they live here so that their
// kernel tests, which run inside the VM harness where the source tree is
// not, are a package of their own.
package runcli

import (
	"fmt"
	"io"
)

// Exit statuses, the same as every ringfence command's.
const (
	exitOK     = 0 // success
	exitDenied = 1 // a check failed, the kernel lacks the feature (probe), verify found differences
	exitUsage  = 2 // bad usage or unreadable input
)

// Env is what a command may touch: its streams. Commands take it as a
// parameter so tests can run them in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Commands returns the commands of this package by name, as ringfence's
// dispatcher knows them.
func Commands() map[string]func(e *Env, args []string) int {
	return map[string]func(e *Env, args []string) int{
		"run":            Run,
		"probe":          Probe,
		"verify":         Verify,
		"__verify-child": VerifyChild,
		"__exec-check":   ExecCheck,
	}
}

// Main runs the command args[0] of this package; ringfence re-executes
// itself through the same names, so a program that embeds Main (a test
// binary) can play ringfence's part.
func Main(e *Env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.Stderr, "ringfence: no command")
		return exitUsage
	}
	cmd, ok := Commands()[args[0]]
	if !ok {
		fmt.Fprintf(e.Stderr, "ringfence: unknown command %q\n", args[0])
		return exitUsage
	}
	return cmd(e, args[1:])
}
