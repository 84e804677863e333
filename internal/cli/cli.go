// Package cli is ringfence's command line: every command of the ringfence
// binary, with its flags, help, input reading and exit status.
// cmd/ringfence only calls Main.
//
// # How to add a command
//
// Write a file named for the command (compile.go for "ringfence
// compile") holding a function that returns its *command, and add one
// line calling that function to the table in commands(). The command
// declares its flags on the FlagSet its setup receives and returns the
// function that does the work:
//
//	func greetCommand() *command {
//		return &command{
//			name:    "greet",
//			args:    "NAME",
//			summary: "greet someone",
//			help: `Prints a greeting for NAME.
//
//	Exit status: 0 greeted, 2 bad usage.`,
//			setup: func(fs *flag.FlagSet) action {
//				loud := fs.Bool("loud", false, "shout")
//				return func(e *env, args []string) error {
//					if len(args) != 1 {
//						return usagef("give one NAME")
//					}
//					...
//					return nil
//				}
//			},
//		}
//	}
//
// The framework parses the flags (before or after the arguments unless
// the command sets argsEnd; everything after "--" is an argument), prints
// help for -h, --help and "ringfence help greet" on standard output, and
// builds the usage line from the flags, so every flag appears in it; give
// each flag that takes a value its placeholder in backquotes in its usage
// string ("write to `FILE`"). The action reports the outcome as its error,
// and (*command).main turns it into the exit status and message in one
// place:
//
//   - nil: exit 0;
//   - usagef(...): bad usage; the message, the usage line and a pointer to
//     the help go to standard error; exit 2 (or the command's failStatus);
//   - exitStatus(n): exit n with no message, for answers already printed
//     ("denied", "invalid");
//   - fail(n, err): print err, exit n;
//   - any other error: print it, exit 2 (or failStatus), for unreadable
//     input and the like.
//
// Fields of command cover the rest: argsEnd for a command whose first
// argument starts someone else's command line (run), failStatus for one
// whose own failures need a status of their own (run's 125), hidden and
// speaksAs for internal commands that ringfence runs itself, and subs for
// a group of subcommands (vm test, vm kernels, ...). TestCommandDocs holds
// every command to the help style, TestHelp to "help NAME", -h and --help.
//
// Messages are prefixed with "ringfence NAME: ". Read inputs with
// readInput or readPolicy (they take "-" for standard input, and
// readPolicy "profile:NAME" too), write outputs with writeOutput, and
// use e.stdout and e.stderr, never the os streams, so tests run commands
// in-process through run.
package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ringfence/ringfence/internal/ocishim"
)

// Exit statuses shared by every command.
const (
	exitOK     = 0 // success; for questions, the answer was "allowed"/"valid"
	exitDenied = 1 // a program was rejected, a verdict denied, a check failed
	exitUsage  = 2 // bad usage or unreadable input
)

// env is what a command may touch: its streams. Commands take it as a
// parameter so tests can run them in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// commands returns the commands in the order "ringfence help" lists them.
// Each lives in its own file, named for the command.
func commands() []*command {
	return []*command{
		// Keep one line per command; add yours in the right section.
		// -- filter programs
		asmCommand(),
		disasmCommand(),
		emuCommand(),
		// -- policies
		checkCommand(),
		testCommand(),
		compileCommand(),
		explainCommand(),
		showCommand(),
		fromSeccompCommand(),
		// -- running programs
		runCommand(),
		profilesCommand(),
		probeCommand(),
		verifyCommand(),
		recordCommand(),
		monitorCommand(),
		// -- containers
		ociRuntimeCommand(),
		nriCommand(),
		// -- the kernel-matrix harness
		vmCommand(),
		// -- about ringfence
		versionCommand(),
		// -- internal: run by ringfence itself
		verifyChildCommand(),
		execCheckCommand(),
		denialLogCommand(),
	}
}

// Main runs "ringfence args..." with the given streams and returns the
// exit status.
func Main(stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	return run(&env{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// MainArgv0 is Main for a program called as argv0: under the name
// ringfence-runtime (a link to the ringfence binary) it is the OCI
// runtime shim, "ringfence oci-runtime args...".
func MainArgv0(argv0 string, stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	if filepath.Base(argv0) == ocishim.Name {
		return ocishim.Main(args, stderr)
	}
	return Main(stdin, stdout, stderr, args)
}

// topHelp is the help of "ringfence" itself.
const topHelp = `ringfence restricts what io_uring may do with the classic-BPF filters Linux
7.0 and later run on every io_uring request: it compiles policies to those
filters, assembles, disassembles, checks and emulates them, and runs
programs under a policy. "ringfence --version" prints its version.`

// run dispatches args to a command and returns the exit status.
func run(e *env, args []string) int {
	top := &command{help: topHelp, subs: commands()}
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			return help(e, top, args[1:])
		case "--version", "-version":
			return run(e, append([]string{"version"}, args[1:]...))
		case "oci-runtime":
			// runc's command line, global flags first: not ours to parse.
			if len(args) == 2 && (args[1] == "-h" || args[1] == "--help") {
				return help(e, top, args[:1])
			}
			return ocishim.Main(args[1:], e.stderr)
		}
	}
	return top.main(e, args)
}

// help is "ringfence help [COMMAND [SUBCOMMAND]]": the help of that
// command, or the list of commands, on standard output.
func help(e *env, top *command, path []string) int {
	c := top
	for _, name := range path {
		sub := c.sub(name)
		if sub == nil {
			return c.status(e, usagef("no command %q%s", strings.TrimSpace(c.name+" "+name), c.suggest(name)))
		}
		c = sub
	}
	c.writeHelp(e.stdout)
	return exitOK
}

// versionCommand is "ringfence version".
func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print ringfence's module version and VCS revision",
		help: `Prints the version of the ringfence module this binary was built from and,
when the build recorded them, the VCS revision, its time and whether the
tree had changes. "ringfence --version" does the same.

Exit status: 0.`,
		setup: func(*flag.FlagSet) action {
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				fmt.Fprintln(e.stdout, versionLine(readBuildInfo()))
				return nil
			}
		},
	}
}
