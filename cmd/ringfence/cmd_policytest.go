package main

// This is "ringfence test". The file is not named cmd_test.go because Go
// would take that for a test file and leave the command out of the binary.

import (
	"errors"
	"flag"
	"fmt"

	"github.com/ringfence/ringfence/policy"
)

const testHelp = `usage: ringfence test [-v] POLICY CASES.yaml

Runs a policy's unit tests: each case of CASES.yaml is a request with the
decision expected (and optionally the rule expected to make it), decided by
the reference evaluator. A failing case prints what differed: expected,
got, and the rule that decided. The cases format is in docs/policy.md.
POLICY "-" reads the policy from standard input.

Exit status: 0 every case passed, 1 a case failed, 2 bad usage or a file
that does not parse.

Flags:
`

// cmdTest is "ringfence test".
func cmdTest(e *env, args []string) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	verbose := fs.Bool("v", false, "print every case, not only failures")
	fs.Usage = func() { fmt.Fprint(e.stderr, testHelp); fs.PrintDefaults() }
	pos, err := policyArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 2 {
		fs.Usage()
		return exitUsage
	}
	data, name, err := readPolicyInput(e, pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence test: %v\n", err)
		return exitUsage
	}
	p, err := policy.Parse(data, name)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	cases, err := policy.LoadCases(pos[1])
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	// TODO(lead): when package compile is on main, also run every case
	// through the compiled plan under the emulator (compile.Compile(p, ...)
	// then the plan's decision on c.Request.Ctx(binary.NativeEndian)) and
	// report a case whose compiled decision differs from the reference.
	failed := 0
	for _, c := range cases {
		d, diff := c.Check(p)
		if diff != "" {
			failed++
			fmt.Fprintf(e.stdout, "FAIL %s (%s)\n     request: %s\n     %s\n", c.Name, c.Pos, c.Request, diff)
			continue
		}
		if *verbose {
			fmt.Fprintf(e.stdout, "ok   %s: %s by %s\n", c.Name, d.Action(), p.Describe(d))
		}
	}
	fmt.Fprintf(e.stdout, "%s: %d cases, %d passed, %d failed\n", pos[1], len(cases), len(cases)-failed, failed)
	if failed > 0 {
		return exitDenied
	}
	return exitOK
}
