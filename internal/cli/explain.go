package cli

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

// explainCommand is "ringfence explain".
func explainCommand() *command {
	return &command{
		name:    "explain",
		args:    "POLICY",
		summary: "show how a policy and its compiled filters decide one request",
		help: `Explains how a policy decides one request: the decision, the rule that made
it (file:line and name, or the default), and how the compiled plan reaches
the same decision in the kernel: which filters run and the instructions
each executes. The request is key=value pairs: op= (name or number), then
fields by policy name or short name (family, type, protocol, flags, mode,
resolve, port, addr, user_data, sqe_flags), values as in policies.
The reference evaluator and the plan (run in the emulator) are compared;
a disagreement is a compiler bug and is reported as such. POLICY is a
file, "-" for standard input, or profile:NAME.

Exit status: 0 explained (whatever the decision), 1 the evaluator and the
compiled plan disagree, or the policy cannot be compiled for that kernel,
2 bad usage or input.`,
		setup: func(fs *flag.FlagSet) action {
			sqe := fs.String("sqe", "", "the `REQUEST`, e.g. 'op=SOCKET family=AF_INET type=SOCK_STREAM'")
			kernelFlag := fs.String("kernel", "", "target kernel `VERSION`: such as 7.2, or running (default: the oldest the policy needs)")
			endian := fs.String("endian", "little", "byte `ORDER` of the target machine: little or big")
			denyRest := fs.Bool("deny-rest", false, "explain the DENY_REST form of the plan (see \"ringfence help compile\")")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one POLICY")
				}
				if *sqe == "" {
					return usagef("give the request with --sqe")
				}
				p, _, name, err := e.loadPolicy(args[0])
				if err != nil {
					return err
				}
				req, err := policy.ParseRequest(*sqe)
				if err != nil {
					return usagef("--sqe: %v", err)
				}
				plan, err := compilePlan(p, *kernelFlag, *endian, compile.Options{DenyRest: *denyRest})
				if err != nil {
					return err
				}
				return explain(e, p, name, req, plan)
			}
		},
	}
}

// explain prints how p and plan decide req.
func explain(e *env, p *policy.Policy, name string, req policy.Request, plan *compile.Plan) error {
	kernel, bo := plan.Kernel, plan.ByteOrder
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
	fmt.Fprintf(w, "\nplan for Linux %v (%s-endian): %s\n", kernel, endianName(bo), verdict[v.Allow])
	if len(v.Runs) == 0 {
		fmt.Fprintf(w, "  no filter is registered for %v: the kernel lets it run without running one\n", req.Op)
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
		return fail(exitDenied, fmt.Errorf("DISAGREEMENT: the reference evaluator says %s, the compiled plan says %s for %s; this is a compiler bug, please report it with the policy and this request",
			verdict[d.Allow], verdict[v.Allow], req))
	}
	return nil
}

// endianName is "little" or "big".
func endianName(bo binary.ByteOrder) string {
	if bo == binary.BigEndian {
		return "big"
	}
	return "little"
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
