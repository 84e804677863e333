package cli

import (
	"errors"
	"flag"
	"fmt"

	"github.com/ringfence/ringfence/profiles"
)

const profilesHelp = `usage: ringfence profiles [show NAME]

Lists the built-in io_uring policies (name and summary); "show NAME" prints
one as YAML, with comments saying what it allows and why. Use one with
"ringfence run --profile NAME", or copy it as the start of your own policy.
`

// cmdProfiles is "ringfence profiles".
func cmdProfiles(e *env, args []string) int {
	fs := flag.NewFlagSet("profiles", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, profilesHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch rest := fs.Args(); {
	case len(rest) == 0:
		for _, p := range profiles.List() {
			fmt.Fprintf(e.stdout, "%-16s %s\n", p.Name, p.Summary)
		}
		return exitOK
	case len(rest) == 2 && rest[0] == "show":
		data, err := profiles.Get(rest[1])
		if err != nil {
			fmt.Fprintf(e.stderr, "ringfence profiles: %v\n", err)
			return exitUsage
		}
		e.stdout.Write(data)
		return exitOK
	default:
		fmt.Fprint(e.stderr, profilesHelp)
		return exitUsage
	}
}
