package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// command is one ringfence command, or a group of subcommands ("vm").
type command struct {
	name    string // as typed after "ringfence": "check", "vm test"
	args    string // what follows the flags in the usage line: "POLICY"
	summary string // one line for the list of commands
	help    string // what it does and its exit status, after the usage line
	hidden  bool   // an internal command, not listed
	// speaksAs is the name its messages carry when not name: an
	// internal command speaks for the command that runs it.
	speaksAs string
	// argsEnd: flags come only before the first argument, which starts
	// arguments that are not ringfence's ("run ... CMD ARGS").
	argsEnd bool
	// failStatus is the exit status of bad usage and of errors that
	// carry none; 0 means exitUsage.
	failStatus int
	// setup declares the command's flags on fs and returns its action.
	setup func(fs *flag.FlagSet) action
	// subs, for a group, are its subcommands (named "vm test", ...).
	subs []*command
}

// action runs a command on its arguments (flags parsed) and reports the
// outcome as its error; see the package documentation for what each
// error means.
type action func(e *env, args []string) error

// usageError is bad usage: the message, then the usage line.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

// usagef returns a usage error.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// exitError ends a command with an exit status, printing err if not nil.
type exitError struct {
	status int
	err    error
}

func (x *exitError) Error() string {
	if x.err == nil {
		return fmt.Sprintf("exit status %d", x.status)
	}
	return x.err.Error()
}

func (x *exitError) Unwrap() error { return x.err }

// exitStatus ends a command with status and no message (its answer is
// printed already).
func exitStatus(status int) error { return &exitError{status: status} }

// fail ends a command with status, printing err.
func fail(status int, err error) error { return &exitError{status, err} }

// prefix is what the command's messages start with.
func (c *command) prefix() string {
	if c.speaksAs != "" {
		return "ringfence " + c.speaksAs
	}
	return strings.TrimSpace("ringfence " + c.name)
}

// sub returns the subcommand called name, or nil.
func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == strings.TrimSpace(c.name+" "+name) {
			return s
		}
	}
	return nil
}

// suggest returns "; did you mean X?" for a mistyped subcommand name.
func (c *command) suggest(name string) string {
	var names []string
	for _, s := range c.subs {
		if !s.hidden {
			names = append(names, s.name[len(c.name):])
		}
	}
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return abi.DidYouMean(name, names)
}

// flags returns the command's flag set and its action.
func (c *command) flags() (*flag.FlagSet, action) {
	fs := flag.NewFlagSet(c.prefix(), flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the framework prints errors and usage
	fs.Usage = func() {}
	return fs, c.setup(fs)
}

// main runs the command on args and returns its exit status.
func (c *command) main(e *env, args []string) int {
	if c.subs != nil {
		if len(args) == 0 {
			return c.status(e, usagef("no command given"))
		}
		switch args[0] {
		case "help", "-h", "-help", "--help":
			return help(e, c, args[1:])
		}
		sub := c.sub(args[0])
		if sub == nil {
			return c.status(e, usagef("unknown command %q%s", args[0], c.suggest(args[0])))
		}
		return sub.main(e, args[1:])
	}
	fs, act := c.flags()
	pos, err := parseArgs(fs, args, c.argsEnd)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.writeHelp(e.stdout)
		return exitOK
	case err != nil:
		err = &usageError{err.Error()}
	default:
		err = act(e, pos)
	}
	return c.status(e, err)
}

// status prints what err says on standard error and returns the exit
// status it stands for: the one place errors become exit statuses.
func (c *command) status(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	failStatus := c.failStatus
	if failStatus == 0 {
		failStatus = exitUsage
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "%s: %s\n", c.prefix(), ue.msg)
		c.writeUsage(e.stderr)
		return failStatus
	}
	status := failStatus
	var xe *exitError
	if errors.As(err, &xe) {
		status, err = xe.status, xe.err
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", c.prefix(), err)
	}
	return status
}

// parseArgs parses the flags in args and returns the other arguments.
// Flags may come before or after the arguments ("check p.yaml --strict"
// as well as "check --strict p.yaml"), or, with argsEnd, only before the
// first one. Everything after a "--" in a flag's place is an argument;
// "--" as the value of a flag that takes one ("--o --") is that value,
// and "-" alone is an argument (standard input).
func parseArgs(fs *flag.FlagSet, args []string, argsEnd bool) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(pos, args[i+1:]...), fs.Parse(flags)
		case len(a) > 1 && a[0] == '-' && (!argsEnd || len(pos) == 0):
			flags = append(flags, a)
			if takesValue(fs, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		case argsEnd:
			return append(pos, args[i:]...), fs.Parse(flags)
		default:
			pos = append(pos, a)
		}
	}
	return pos, fs.Parse(flags)
}

// takesValue reports whether the flag argument a ("-o", "--format") is a
// defined flag whose value is the next argument.
func takesValue(fs *flag.FlagSet, a string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	return f != nil && !isBool(f)
}

// isBool reports whether f is a boolean flag.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
