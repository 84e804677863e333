package cli

import (
	"encoding/binary"
	"flag"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// compileCommand is "ringfence compile".
func compileCommand() *command {
	return &command{
		name:    "compile",
		args:    "POLICY",
		summary: "compile a policy into filter registrations (text, json, c, go)",
		help: `Compiles a policy (docs/policy.md) into a plan: the io_uring BPF filters to
register, in order, with their flags and pdu_size. A default-deny policy
gets a filter for each opcode it may deny ("ret #0" for those it always
denies) and none for those it always allows, which the kernel then lets
through without running a filter; the opcodes a kernel has beyond
ringfence's table are denied when the plan is applied (one "ret #0" each,
up to the first opcode the kernel refuses with EINVAL; the plan says so).
--deny-rest compiles the older form instead: a filter for every opcode the
policy may allow and DENY_REST on the last one, which denies the rest in
the kernel but runs a filter on every allowed request.

Formats: text (assembly per registration, readable by "ringfence asm"),
json, c (struct sock_filter and struct io_uring_bpf_filter initialisers),
go (a Go file). The kernel
version decides which fields filters see: CONNECT conditions need 7.2.
"running" reads the running kernel's version. POLICY is a file, "-" for
standard input, or profile:NAME. docs/compiler.md explains the programs.

Exit status: 0 compiled, 1 the policy cannot be compiled for that kernel,
2 bad usage or a policy that does not parse.`,
		setup: func(fs *flag.FlagSet) action {
			format := fs.String("format", "text", "output `FORMAT`: "+strings.Join(compile.Formats(), ", "))
			kernelFlag := fs.String("kernel", "", "target kernel `VERSION`: such as 7.2, or running (default: the oldest the policy needs)")
			endian := fs.String("endian", "little", "byte `ORDER` of the target machine: little or big")
			naive := fs.Bool("naive", false, "compile one comparison per value, without optimisation (the baseline of the figures)")
			denyRest := fs.Bool("deny-rest", false, "the DENY_REST form: a filter for every opcode the policy may allow, DENY_REST on the last (slower; see above)")
			out := fs.String("o", "", "write to `FILE` instead of standard output")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one POLICY")
				}
				p, _, _, err := e.loadPolicy(args[0])
				if err != nil {
					return err
				}
				plan, err := compilePlan(p, *kernelFlag, *endian, compile.Options{Naive: *naive, DenyRest: *denyRest})
				if err != nil {
					return err
				}
				text, err := plan.Format(*format)
				if err != nil {
					return usagef("--format: %v", err)
				}
				return e.writeOutput(*out, text)
			}
		},
	}
}

// compilePlan compiles p with opt for the target the --kernel and
// --endian values name; errors are bad usage, or (exit 1) a policy the
// target cannot enforce.
func compilePlan(p *policy.Policy, kernelFlag, endian string, opt compile.Options) (*compile.Plan, error) {
	kernel, err := kernelArg(kernelFlag, p)
	if err != nil {
		return nil, usagef("--kernel: %v", err)
	}
	bo, err := endianArg(endian)
	if err != nil {
		return nil, usagef("--endian: %v", err)
	}
	opt.Kernel, opt.ByteOrder = kernel, bo
	plan, err := compile.Compile(p, opt)
	if err != nil {
		return nil, fail(exitDenied, err)
	}
	return plan, nil
}

// kernelArg parses a --kernel value: a version such as 7.2, "running" for
// the running kernel, or "" for the oldest kernel p needs.
func kernelArg(s string, p *policy.Policy) (abi.Version, error) {
	switch s {
	case "":
		return p.Needs(), nil
	case "running":
		v, err := kernel.Version()
		if err != nil {
			return abi.Version{}, fmt.Errorf("reading the running kernel's version: %v", err)
		}
		return v, nil
	}
	return abi.ParseVersion(s)
}

// endianArg parses an --endian value: little or big ("" is little).
func endianArg(s string) (binary.ByteOrder, error) {
	bo, err := parseEndian(s)
	if bo == nil && err == nil {
		bo = binary.LittleEndian
	}
	return bo, err
}
