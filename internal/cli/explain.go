package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

const explainHelp = `usage: ringfence explain [--kernel V|running] [--endian little|big] --sqe 'op=SOCKET family=AF_INET ...' POLICY

Explains how a policy decides one request: the decision, the rule that made
it (file:line and name, or the default), and how the compiled plan reaches
the same decision in the kernel: which filters run and the instructions
each executes. The request is key=value pairs: op= (name or number), then
fields by policy name or short name (family, type, protocol, flags, mode,
resolve, port, addr, user_data, sqe_flags), values as in policies.
The reference evaluator and the plan (run in the emulator) are compared;
a disagreement is a compiler bug and is reported as such.

Exit status: 0 explained (whatever the decision), 1 the evaluator and the
compiled plan disagree, or the policy cannot be compiled for that kernel,
2 bad usage or input.

Flags:
`

// cmdExplain is "ringfence explain".
func cmdExplain(e *env, args []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sqe := fs.String("sqe", "", "the request, e.g. 'op=SOCKET family=AF_INET type=SOCK_STREAM'")
	kernelFlag := fs.String("kernel", "", "target kernel: a version such as 7.2, or running (default: the oldest the policy needs)")
	endian := fs.String("endian", "little", "byte order of the target machine: little or big")
	fs.Usage = func() { fmt.Fprint(e.stderr, explainHelp); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 || *sqe == "" {
		fs.Usage()
		return exitUsage
	}
	data, name, err := readPolicyInput(e, pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence explain: %v\n", err)
		return exitUsage
	}
	p, err := policy.Parse(data, name)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	req, err := policy.ParseRequest(*sqe)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence explain: --sqe: %v\n", err)
		return exitUsage
	}
	kernel, err := kernelArg(*kernelFlag, p)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence explain: %v\n", err)
		return exitUsage
	}
	bo, err := endianArg(*endian)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence explain: %v\n", err)
		return exitUsage
	}
	plan, err := compile.Compile(p, compile.Options{Kernel: kernel, ByteOrder: bo})
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitDenied
	}

	w := e.stdout
	d := p.Decide(req)
	verdict := map[bool]string{true: "allow", false: "deny"}
	fmt.Fprintf(w, "request:  %s\n", req)
	fmt.Fprintf(w, "decision: %s\n", verdict[d.Allow])
	if d.Rule >= 0 {
		r := p.Rules[d.Rule]
		rp := r.Pos
		if rp.File == "" {
			rp.File = name
		}
		fmt.Fprintf(w, "by:       %s at %s\n", r.Label(d.Rule), rp)
	} else {
		fmt.Fprintf(w, "by:       the default (%s)", p.Default)
		if p.DefaultPos.Line > 0 {
			dp := p.DefaultPos
			if dp.File == "" {
				dp.File = name
			}
			fmt.Fprintf(w, " at %s", dp)
		}
		fmt.Fprintf(w, ": no rule naming %v matched\n", req.Op)
	}
	ctx := req.CtxFor(bo, kernel)
	v := plan.Decide(ctx)
	fmt.Fprintf(w, "\nplan for Linux %v (%s-endian): %s\n", kernel, *endian, verdict[v.Allow])
	if len(v.Runs) == 0 {
		fmt.Fprintf(w, "  no filter is registered for %v: the kernel lets it run\n", req.Op)
	}
	for _, run := range v.Runs {
		reg := plan.Registrations[run.Reg]
		if run.Stub {
			fmt.Fprintf(w, "  %v has no filter of its own: the deny stub left by DENY_REST on registration %d (%v) denies it\n",
				req.Op, run.Reg+1, reg.Op)
			continue
		}
		fmt.Fprintf(w, "  registration %d: %s\n", run.Reg+1, reg.Comment)
		explainPath(w, plan, reg, run)
	}
	if v.Allow != d.Allow {
		fmt.Fprintf(e.stderr, "ringfence explain: DISAGREEMENT: the reference evaluator says %s, the compiled plan says %s for %s; this is a compiler bug, please report it with the policy and this request\n",
			verdict[d.Allow], verdict[v.Allow], req)
		return exitDenied
	}
	return exitOK
}

// explainPath prints the instructions a filter executed, with the way
// each conditional jump went.
func explainPath(w io.Writer, plan *compile.Plan, reg compile.Registration, run compile.FilterRun) {
	ins := reg.Prog.Instructions()
	info, _ := reg.Op.Info()
	lines := asm.Lines(ins, asm.Options{ByteOrder: plan.ByteOrder, View: info.View})
	cmps := 0
	for _, pc := range run.Path {
		if ins[pc].IsConditionalJump() {
			cmps++
		}
	}
	fmt.Fprintf(w, "  executed %d of %d instructions (%d comparisons), returned %d:\n", len(run.Path), len(ins), cmps, run.Ret)
	for i, pc := range run.Path {
		note := ""
		if in := ins[pc]; (in.IsConditionalJump() || in.IsJump()) && i+1 < len(run.Path) {
			if next := run.Path[i+1]; next == pc+1 {
				note = "  ; -> next"
			} else {
				note = fmt.Sprintf("  ; -> L%d", next)
			}
		}
		fmt.Fprintf(w, "    %4d: %s%s\n", pc, strings.TrimSpace(lines[pc]), note)
	}
}
