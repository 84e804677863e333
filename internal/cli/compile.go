package cli

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

const compileHelp = `usage: ringfence compile [--format text|json|c|go] [--kernel V|running] [--endian little|big] [--naive] [-o FILE] POLICY

Compiles a policy (docs/policy.md) into a plan: the io_uring BPF filters to
register, in order, with their flags (DENY_REST on the last one of a
default-deny policy) and pdu_size. Formats: text (assembly per
registration, readable by "ringfence asm"), json, c (struct sock_filter and
struct io_uring_bpf_filter initialisers), go (a Go file). The kernel
version decides which fields filters see: CONNECT conditions need 7.2.
"running" reads the running kernel's version. POLICY "-" reads standard
input. docs/compiler.md explains the programs.

Exit status: 0 compiled, 1 the policy cannot be compiled for that kernel,
2 bad usage or a policy that does not parse.

Flags:
`

// kernelArg parses a --kernel value: a version such as 7.2, "running" for
// the running kernel, or "" for the oldest kernel p needs.
func kernelArg(s string, p *policy.Policy) (abi.Version, error) {
	switch s {
	case "":
		return p.Needs(), nil
	case "running":
		rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			return abi.Version{}, fmt.Errorf("reading the running kernel's version: %v", err)
		}
		return abi.ParseVersion(strings.TrimSpace(string(rel)))
	}
	return abi.ParseVersion(s)
}

// endianArg parses an --endian value.
func endianArg(s string) (binary.ByteOrder, error) {
	switch s {
	case "little", "":
		return binary.LittleEndian, nil
	case "big":
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("--endian must be little or big, not %q", s)
}

// cmdCompile is "ringfence compile".
func cmdCompile(e *env, args []string) int {
	fs := flag.NewFlagSet("compile", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	format := fs.String("format", "text", "output format: "+strings.Join(compile.Formats(), ", "))
	kernelFlag := fs.String("kernel", "", "target kernel: a version such as 7.2, or running (default: the oldest the policy needs)")
	endian := fs.String("endian", "little", "byte order of the target machine: little or big")
	naive := fs.Bool("naive", false, "compile one comparison per value, without optimisation (the baseline of the figures)")
	out := fs.String("o", "", "write to `FILE` instead of standard output")
	fs.Usage = func() { fmt.Fprint(e.stderr, compileHelp); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	data, name, err := readPolicyInput(e, pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence compile: %v\n", err)
		return exitUsage
	}
	p, err := policy.Parse(data, name)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	kernel, err := kernelArg(*kernelFlag, p)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence compile: %v\n", err)
		return exitUsage
	}
	bo, err := endianArg(*endian)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence compile: %v\n", err)
		return exitUsage
	}
	plan, err := compile.Compile(p, compile.Options{Kernel: kernel, ByteOrder: bo, Naive: *naive})
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitDenied
	}
	text, err := plan.Format(*format)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence compile: %v\n", err)
		return exitUsage
	}
	if *out == "" {
		e.stdout.Write(text)
		return exitOK
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "ringfence compile: %v\n", err)
		return exitUsage
	}
	return exitOK
}
