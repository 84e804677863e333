// Package cli is ringfence's command line: every command of the ringfence
// binary, its flags, help and exit status. cmd/ringfence only calls Main.
package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses shared by every command.
const (
	exitOK     = 0 // success; for questions, the answer was "allowed"/"valid"
	exitDenied = 1 // a program was rejected, a verdict denied, a check failed
	exitUsage  = 2 // bad usage or unreadable input
)

// env is what a command may touch: its streams and arguments. Commands take
// it as a parameter so tests can run them in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand of ringfence.
type command struct {
	name    string
	summary string // one line for "ringfence help"
	run     func(e *env, args []string) int
}

// commands returns the subcommands in the order "help" lists them.
// Each lives in its own file, named for the command.
func commands() []command {
	return []command{
		// Keep one line per command; add yours in the right section.
		// -- toolchain (issue 2)
		{"asm", "assemble a classic-BPF filter and check it", cmdAsm},
		{"disasm", "print a filter program as assembly", cmdDisasm},
		{"emu", "run a filter program on a context, as the kernel does", cmdEmu},
		// -- kernel and VM harness (issue 3)
		{"vm", "real kernels under QEMU: kernel tests, commands in the Debian guest (vm test, kernels, exec, run, image)", cmdVM},
		// -- policies (issue 4)
		{"check", "validate and lint a policy", cmdCheck},
		{"test", "run a policy's test cases (requests with expected decisions)", cmdTest},
		{"compile", "compile a policy into filter registrations (text, json, c, go)", cmdCompile},
		{"explain", "show how a policy and its compiled filters decide one request", cmdExplain},
		// -- running programs (issue 5)
		{"run", "run a program with io_uring restricted by a policy", cmdRun},
		{"profiles", "list the built-in policies, or show one", cmdProfiles},
		{"probe", "report what the running kernel supports for io_uring filters", cmdProbe},
		{"verify", "check a policy against the real kernel at its boundaries", cmdVerify},
		{"__verify-child", "(internal) the child process of verify", cmdVerifyChild},
		{"__exec-check", "(internal) the second stage of run", cmdExecCheck},
	}
}

// Main runs "ringfence args..." with the given streams and returns the
// exit status.
func Main(stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	return run(&env{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// run dispatches args to a command and returns the exit status.
func run(e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "ringfence: unknown command %q; run \"ringfence help\" for the list\n", args[0])
	return exitUsage
}

// parseArgs parses flags that may come before or after the positional
// arguments ("check p.yaml --strict" as well as "check --strict p.yaml")
// and returns the positional ones; everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ringfence COMMAND [ARGS...]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		if strings.HasPrefix(c.name, "__") {
			continue // internal commands, run by ringfence itself
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"ringfence COMMAND -h\" for a command's flags.")
}
