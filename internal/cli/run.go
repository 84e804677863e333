package cli

import (
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// Exit statuses of "ringfence run" when it does not get to run the program,
// following env(1) and timeout(1): the program's own status otherwise.
const (
	exitRunFailed   = 125 // ringfence itself failed; the program was not run
	exitNotExecable = 126 // the program was found but could not be executed
	exitNotFound    = 127 // the program was not found
)

const runHelp = `usage: ringfence run [--policy FILE | --profile NAME] [--ring-fds=close|refuse] [--if-supported] -- CMD [ARGS...]

Runs CMD with io_uring restricted by a policy: sets no_new_privs, compiles the
policy for the running kernel, registers it on the task and execs CMD. CMD and
every process it starts can then only submit io_uring requests the policy
allows; the others complete with -EACCES. With neither --policy nor --profile,
the built-in "default" profile applies ("ringfence profiles" lists them).

Fails closed: if the kernel lacks io_uring BPF filters (before Linux 7.0), a
filter is refused, or anything else goes wrong, CMD is not run.

Exit status: CMD's own status when it ran; 125 when ringfence failed and CMD
was not run (the message says why); 126 when CMD could not be executed; 127
when CMD was not found; 2 for bad usage.

flags:
`

// cmdRun is "ringfence run".
func cmdRun(e *env, args []string) int {
	return runWith(e, args, ringfence.Host())
}

// runWith is Run with the kernel interface as a parameter, so tests can
// make each step fail.
func runWith(e *env, args []string, k ringfence.Kernel) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	policyFile := fs.String("policy", "", "policy `FILE` (YAML or JSON)")
	profile := fs.String("profile", "", "built-in profile `NAME` (default \"default\")")
	ringFDs := fs.String("ring-fds", "close", "inherited io_uring descriptors: close them, or refuse to run")
	ifSupported := fs.Bool("if-supported", false, "on kernels without io_uring filters, run CMD unfiltered (with a warning)")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, runHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(e.stderr, "ringfence run: no command given; usage: ringfence run [flags] -- CMD [ARGS...]")
		return exitUsage
	}
	if *policyFile != "" && *profile != "" {
		fmt.Fprintln(e.stderr, "ringfence run: give --policy or --profile, not both")
		return exitUsage
	}
	mode, err := ringfence.ParseRingFDMode(*ringFDs)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence run: --ring-fds: %v\n", err)
		return exitUsage
	}
	var p *policy.Policy
	switch {
	case *policyFile != "":
		p, err = ringfence.LoadPolicy(*policyFile)
	case *profile != "":
		p, err = ringfence.Profile(*profile)
	default:
		p, err = ringfence.Profile(profiles.DefaultName)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence run: %v\n", err)
		return exitUsage
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence run: %v; not run\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, iofs.ErrNotExist) {
			return exitNotFound
		}
		return exitNotExecable
	}
	// ringfence execs itself first ("__exec-check"), and only that process,
	// having checked that the task filters survived execve, execs CMD:
	// Linux 7.0 drops them at execve (seen on 7.0.13).
	self, selfArgs, err := selfArgv("__exec-check")
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence run: %v; %s was not run\n", err, argv[0])
		return exitRunFailed
	}
	if *ifSupported {
		selfArgs = append(selfArgs, "--if-supported")
	}
	selfArgs = append(append(selfArgs, "--", path), argv...)
	err = ringfence.ExecUnder(k, ringfence.ExecSpec{
		Policy:      p,
		Path:        self,
		Args:        selfArgs,
		Name:        argv[0],
		Env:         os.Environ(),
		RingFDs:     mode,
		IfSupported: *ifSupported,
		Warn:        func(msg string) { fmt.Fprintf(e.stderr, "ringfence run: warning: %s\n", msg) },
	})
	fmt.Fprintf(e.stderr, "ringfence run: %v; %s was not run\n", err, argv[0])
	var se *ringfence.StepError
	if errors.As(err, &se) && se.Step == ringfence.StepExec {
		return exitNotExecable
	}
	return exitRunFailed
}

// selfArgv returns the path of this executable and the argv that runs its
// command cmd. Nothing from the environment changes it: a test binary that
// plays ringfence's part dispatches the command names in its TestMain.
func selfArgv(cmd string) (string, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("cannot find ringfence's own executable: %w", err)
	}
	return self, []string{self, cmd}, nil
}

// cmdExecCheck is the hidden "__exec-check [--if-supported] -- PATH ARGV..."
// that "ringfence run" execs after registering the policy: it checks that
// the io_uring task filters survived execve, then execs PATH. If they did
// not, PATH is not run (unless --if-supported, with a warning).
func cmdExecCheck(e *env, args []string) int {
	ifSupported := false
	if len(args) > 0 && args[0] == "--if-supported" {
		ifSupported, args = true, args[1:]
	}
	if len(args) < 3 || args[0] != "--" {
		fmt.Fprintln(e.stderr, "ringfence __exec-check: internal command of ringfence run; usage: __exec-check [--if-supported] -- PATH ARGV0 [ARGS...]")
		return exitUsage
	}
	path, argv := args[1], args[2:]
	restricted, err := kernel.TaskRestricted()
	switch {
	case err == nil && restricted:
	case ifSupported:
		// The first stage warned already when the kernel has no filters.
		if kernel.Supported() == nil {
			fmt.Fprintf(e.stderr, "ringfence run: warning: running %s WITHOUT an io_uring policy: the io_uring task filters did not survive execve on this kernel\n", argv[0])
		}
	case err != nil:
		fmt.Fprintf(e.stderr, "ringfence run: cannot check that the io_uring task filters survived execve: %v; %s was not run\n", err, argv[0])
		return exitRunFailed
	default:
		rel, _ := kernel.Release()
		fmt.Fprintf(e.stderr, "ringfence run: this kernel (%s) dropped the io_uring task filters at execve, so %s would run unfiltered (Linux 7.0 does this; 7.1 and later keep them); %s was not run\n", rel, argv[0], argv[0])
		return exitRunFailed
	}
	err = kernel.Exec(path, argv, os.Environ())
	fmt.Fprintf(e.stderr, "ringfence run: %v; %s was not run\n", err, argv[0])
	return exitNotExecable
}
