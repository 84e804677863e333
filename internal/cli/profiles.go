package cli

import (
	"flag"
	"fmt"

	"github.com/ringfence/ringfence/profiles"
)

// profilesCommand is "ringfence profiles".
func profilesCommand() *command {
	return &command{
		name:    "profiles",
		args:    "[show NAME]",
		summary: "list the built-in policies, or show one",
		help: `Lists the built-in io_uring policies (name and summary); "show NAME" prints
one as YAML, as written, with comments saying what it allows and why (most
extend "base"; "ringfence show profile:NAME" prints one flattened). Use one
with "ringfence run --profile NAME", extend it in your own policy
("extends: NAME"), or copy it as the start of your own.

Exit status: 0 listed or shown, 2 bad usage or an unknown profile.`,
		setup: func(*flag.FlagSet) action {
			return func(e *env, args []string) error {
				switch {
				case len(args) == 0:
					for _, p := range profiles.List() {
						fmt.Fprintf(e.stdout, "%-16s %s\n", p.Name, p.Summary)
					}
					return nil
				case len(args) == 2 && args[0] == "show":
					data, err := profiles.Get(args[1])
					if err != nil {
						return err
					}
					_, err = e.stdout.Write(data)
					return err
				}
				return usagef("want no arguments or show NAME")
			}
		},
	}
}
