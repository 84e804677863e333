package main

import "github.com/ringfence/ringfence/internal/runcli"

// The commands that touch the running kernel live in internal/runcli, with
// their kernel tests.

func cli(name string) func(e *env, args []string) int {
	return func(e *env, args []string) int {
		return runcli.Commands()[name](&runcli.Env{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr}, args)
	}
}

// cmdRun is "ringfence run".
func cmdRun(e *env, args []string) int { return cli("run")(e, args) }

// cmdProbe is "ringfence probe".
func cmdProbe(e *env, args []string) int { return cli("probe")(e, args) }

// cmdVerify is "ringfence verify".
func cmdVerify(e *env, args []string) int { return cli("verify")(e, args) }

// cmdVerifyChild is the internal "__verify-child" of verify.
func cmdVerifyChild(e *env, args []string) int { return cli("__verify-child")(e, args) }

// cmdExecCheck is the internal "__exec-check" of run.
func cmdExecCheck(e *env, args []string) int { return cli("__exec-check")(e, args) }
