package cli

// This is "ringfence test". The file is not named cmd_test.go because Go
// would take that for a test file and leave the command out of the binary.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

const testHelp = `usage: ringfence test [-v] [--kernel V] POLICY CASES.yaml

Runs a policy's unit tests: each case of CASES.yaml is a request with the
decision expected (and optionally the rule expected to make it). Each case
is decided by the reference evaluator (the policy's meaning), which must
give the expected decision, and by the plan compiled for kernel V run in
the emulator, little- and big-endian, which must agree with it. A failing case prints what differed:
expected, got, and the rule that decided. The cases format is in
docs/policy.md. POLICY "-" reads the policy from standard input.

Exit status: 0 every case passed, 1 a case failed, 2 bad usage or a file
that does not parse.

Flags:
`

// cmdTest is "ringfence test".
func cmdTest(e *env, args []string) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	verbose := fs.Bool("v", false, "print every case, not only failures")
	kernelFlag := fs.String("kernel", "", "compile for this kernel (default: the oldest the policy needs, 7.0 or 7.2)")
	refOnly := fs.Bool("reference-only", false, "decide with the reference evaluator only, not the compiled plan")
	fs.Usage = func() { fmt.Fprint(e.stderr, testHelp); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
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
	kernel := p.Needs()
	if *kernelFlag != "" {
		if kernel, err = abi.ParseVersion(*kernelFlag); err != nil {
			fmt.Fprintf(e.stderr, "ringfence test: %v\n", err)
			return exitUsage
		}
	}
	var plans []casePlan
	if !*refOnly {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			plan, err := compile.Compile(p, compile.Options{Kernel: kernel, ByteOrder: bo})
			if err != nil {
				fmt.Fprintf(e.stderr, "ringfence test: %v\n", err)
				return exitUsage
			}
			name := fmt.Sprintf("the compiled plan (Linux %v, %s)", kernel, strings.TrimSuffix(strings.ToLower(bo.String()), "endian")+"-endian")
			plans = append(plans, casePlan{name, plan, bo, kernel})
		}
	}
	failed := runCases(e.stdout, p, cases, plans, *verbose)
	how := "reference evaluator only"
	if len(plans) > 0 {
		how = fmt.Sprintf("reference evaluator and compiled plan for Linux %v, both byte orders", kernel)
	}
	fmt.Fprintf(e.stdout, "%s: %d cases, %d passed, %d failed (%s)\n", pos[1], len(cases), len(cases)-failed, failed, how)
	if failed > 0 {
		return exitDenied
	}
	return exitOK
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
