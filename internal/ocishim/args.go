package ocishim

import (
	"fmt"
	"slices"
	"strings"
)

// The command lines of runc and crun: global flags, a command, its flags
// and its positional arguments. The shim must find a few values in them
// (the bundle of create and run; the container and the process of exec)
// and otherwise hand them on unchanged.

// globalValued are the global flags of runc and crun that take a value
// when it is not attached with "=".
var globalValued = []string{"log", "log-format", "log-level", "root", "criu", "rootless", "cgroup-manager"}

// globals are the global flags of a runtime command line.
type globals struct {
	args      []string // as given
	log       string   // --log FILE
	logFormat string   // --log-format text|json
}

// flagName splits "--name=value", "-name=value", "--name" and "-n" into
// the name and, if attached, the value.
func flagName(tok string) (name, value string, attached bool) {
	name = strings.TrimLeft(tok, "-")
	name, value, attached = strings.Cut(name, "=")
	return name, value, attached
}

// isFlag reports whether tok is a flag ("-x", "--x", not "-" or "--").
func isFlag(tok string) bool { return len(tok) > 1 && tok[0] == '-' && tok != "--" }

// splitGlobal splits args into the global flags and the rest (the command
// and its arguments).
func splitGlobal(args []string) (globals, []string, error) {
	var g globals
	i := 0
	for i < len(args) && isFlag(args[i]) {
		name, value, attached := flagName(args[i])
		i++
		if !attached && slices.Contains(globalValued, name) {
			if i == len(args) {
				return g, nil, fmt.Errorf("global flag --%s needs a value", name)
			}
			value = args[i]
			i++
		}
		switch name {
		case "log":
			g.log = value
		case "log-format":
			g.logFormat = value
		}
	}
	g.args = args[:i]
	return g, args[i:], nil
}

// cmdFlags describes one command's flags: which take a value (long and
// short names), and which are booleans.
type cmdFlags struct {
	valued, boolean []string
}

// The flags of create and run (runc and crun), and of exec.
var (
	createFlags = cmdFlags{
		valued:  []string{"bundle", "b", "console-socket", "pid-file", "preserve-fds", "config", "f"},
		boolean: []string{"no-pivot", "no-new-keyring", "detach", "d", "keep", "no-subreaper"},
	}
	execFlags = cmdFlags{
		valued:  []string{"console-socket", "cwd", "env", "e", "user", "u", "additional-gids", "g", "process", "p", "apparmor", "process-label", "pid-file", "cap", "c", "preserve-fds", "cgroup"},
		boolean: []string{"tty", "t", "detach", "d", "no-new-privs", "ignore-paused"},
	}
)

// parsed is a command's arguments after its name.
type parsed struct {
	values map[string]string // flag name -> value (the last one given)
	index  map[string]int    // flag name -> index of its value in args
	pos    []int             // indexes of the positional arguments
}

// parse reads the arguments of a command (after its name) by f. The first
// positional argument ends the flags, as in runc and crun; every argument
// after it is positional. An unknown flag is an error unless lenient, when
// it is taken as a boolean.
func (f cmdFlags) parse(args []string, lenient bool) (parsed, error) {
	p := parsed{values: map[string]string{}, index: map[string]int{}}
	i := 0
	for i < len(args) {
		tok := args[i]
		if tok == "--" {
			for j := i + 1; j < len(args); j++ {
				p.pos = append(p.pos, j)
			}
			return p, nil
		}
		if !isFlag(tok) {
			for j := i; j < len(args); j++ {
				p.pos = append(p.pos, j)
			}
			return p, nil
		}
		name, value, attached := flagName(tok)
		switch {
		case slices.Contains(f.valued, name):
			if !attached {
				i++
				if i == len(args) {
					return p, fmt.Errorf("flag %s needs a value", tok)
				}
				value = args[i]
			}
			p.values[name] = value
			p.index[name] = i
		case slices.Contains(f.boolean, name) || lenient:
		case !strings.HasPrefix(tok, "--") && allBool(name, f.boolean):
			// Combined short booleans: -td.
		default:
			return p, fmt.Errorf("unknown flag %s", tok)
		}
		i++
	}
	return p, nil
}

func allBool(name string, boolean []string) bool {
	for _, r := range name {
		if !slices.Contains(boolean, string(r)) {
			return false
		}
	}
	return name != ""
}

// value returns the value of the first of names given.
func (p parsed) value(names ...string) (string, int, bool) {
	for _, n := range names {
		if v, ok := p.values[n]; ok {
			return v, p.index[n], true
		}
	}
	return "", 0, false
}
