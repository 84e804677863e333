package cli

import (
	"errors"
	"flag"

	"github.com/ringfence/ringfence/policy"
)

// showCommand is "ringfence show".
func showCommand() *command {
	return &command{
		name:    "show",
		args:    "POLICY",
		summary: "print a policy flattened: the rules of the policies it extends included",
		help: `Prints POLICY as one file that stands alone: the rules of the policies it
extends (built-in profiles and files, docs/policy.md "Composition") are
written out after its own, in the order that decides, each inherited rule
with a comment naming its base; the default and register section are the
ones that apply. The output parses back to a policy that decides every
request as POLICY does. POLICY is a file, "-" for standard input, or
profile:NAME.

Exit status: 0 printed, 1 the policy is invalid, 2 bad usage or an
unreadable file.`,
		setup: func(fs *flag.FlagSet) action {
			asJSON := fs.Bool("json", false, "print JSON instead of YAML")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one POLICY")
				}
				p, _, _, err := e.loadPolicy(args[0])
				var invalid policy.ErrorList
				if errors.As(err, &invalid) {
					return fail(exitDenied, err)
				}
				if err != nil {
					return err
				}
				out, err := p.YAML()
				if *asJSON {
					out, err = p.JSON()
				}
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(out)
				return err
			}
		},
	}
}
