package cli

// This is "ringfence test". The file is not named cmd_test.go because Go
// would take that for a test file and leave the command out of the binary.

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

// testCommand is "ringfence test".
func testCommand() *command {
	return &command{
		name:    "test",
		args:    "POLICY CASES.yaml",
		summary: "run a policy's test cases (requests with expected decisions)",
		help: `Runs a policy's unit tests: each case of CASES.yaml is a request with the
decision expected (and optionally the rule expected to make it). Each case
is decided by the reference evaluator (the policy's meaning), which must
give the expected decision, and by the plan compiled for kernel VERSION run
in the emulator, little- and big-endian, which must agree with it. A
failing case prints what differed: expected, got, and the rule that
decided. The cases format is in docs/policy.md. POLICY is a file, "-" for
standard input, or profile:NAME.

Exit status: 0 every case passed, 1 a case failed, 2 bad usage or a file
that does not parse.`,
		setup: func(fs *flag.FlagSet) action {
			verbose := fs.Bool("v", false, "print every case, not only failures")
			kernelFlag := fs.String("kernel", "", "compile for this kernel `VERSION` (default: the oldest the policy needs, 7.0 or 7.2)")
			refOnly := fs.Bool("reference-only", false, "decide with the reference evaluator only, not the compiled plan")
			return func(e *env, args []string) error {
				if len(args) != 2 {
					return usagef("give a POLICY and a CASES file")
				}
				return runTests(e, args[0], args[1], *kernelFlag, *refOnly, *verbose)
			}
		},
	}
}

// runTests is "ringfence test" on a policy and its cases file.
func runTests(e *env, policyArg, casesFile, kernelFlag string, refOnly, verbose bool) error {
	p, _, _, err := e.loadPolicy(policyArg)
	if err != nil {
		return err
	}
	cases, err := policy.LoadCases(casesFile)
	if err != nil {
		return err
	}
	kernel := p.Needs()
	if kernelFlag != "" {
		if kernel, err = abi.ParseVersion(kernelFlag); err != nil {
			return usagef("--kernel: %v", err)
		}
	}
	var plans []casePlan
	if !refOnly {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			plan, err := compile.Compile(p, compile.Options{Kernel: kernel, ByteOrder: bo})
			if err != nil {
				return err
			}
			name := fmt.Sprintf("the compiled plan (Linux %v, %s-endian)", kernel, endianName(bo))
			plans = append(plans, casePlan{name, plan, bo, kernel})
		}
	}
	failed := runCases(e.stdout, p, cases, plans, verbose)
	how := "reference evaluator only"
	if len(plans) > 0 {
		how = fmt.Sprintf("reference evaluator and compiled plan for Linux %v, both byte orders", kernel)
	}
	fmt.Fprintf(e.stdout, "%s: %d cases, %d passed, %d failed (%s)\n", casesFile, len(cases), len(cases)-failed, failed, how)
	if failed > 0 {
		return exitStatus(exitDenied)
	}
	return nil
}

// casePlan is a compiled plan the cases also run through.
type casePlan struct {
	name   string // for messages: "the compiled plan (Linux 7.2, little-endian)"
	plan   *compile.Plan
	bo     binary.ByteOrder
	kernel abi.Version
}

// runCases checks every case with the reference evaluator and, for each of
// plans, that the emulated plan agrees with it; it prints failures (and,
// if verbose, passes) to w and returns how many cases failed.
func runCases(w io.Writer, p *policy.Policy, cases []policy.Case, plans []casePlan, verbose bool) int {
	failed := 0
	for _, c := range cases {
		d, diff := c.Check(p)
		var diffs []string
		if diff != "" {
			diffs = append(diffs, diff)
		}
		for _, cp := range plans {
			v := cp.plan.Decide(c.Request.CtxFor(cp.bo, cp.kernel))
			if v.Allow != d.Allow {
				diffs = append(diffs, fmt.Sprintf("%s %s, unlike the reference evaluator (%s by %s): a compiler bug",
					cp.name, map[bool]string{true: "allows", false: "denies"}[v.Allow], d.Action(), p.Describe(d)))
			}
		}
		if len(diffs) > 0 {
			failed++
			fmt.Fprintf(w, "FAIL %s (%s)\n     request: %s\n     %s\n", c.Name, c.Pos, c.Request, strings.Join(diffs, "\n     "))
			continue
		}
		if verbose {
			fmt.Fprintf(w, "ok   %s: %s by %s\n", c.Name, d.Action(), p.Describe(d))
		}
	}
	return failed
}
