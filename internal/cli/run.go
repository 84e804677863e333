package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"time"

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

// runCommand is "ringfence run".
func runCommand() *command { return runCommandWith(ringfence.Host()) }

// runCommandWith is "ringfence run" with the kernel interface as a
// parameter, so tests can make each step fail.
func runCommandWith(k ringfence.Kernel) *command {
	return &command{
		name:       "run",
		args:       "[--] CMD [ARGS...]",
		summary:    "run a program with io_uring restricted by a policy",
		argsEnd:    true,
		failStatus: exitRunFailed,
		help: `Runs CMD with io_uring restricted by a policy: sets no_new_privs, compiles the
policy for the running kernel, registers its io_uring task restrictions (the
register section) and filters on the task, installs a small companion
seccomp filter (pidfd_getfd, and the io_uring_register operations the
register section does not allow) and execs CMD. CMD and every process it starts
can then only submit io_uring requests the policy allows; the others
complete with -EACCES. With neither --policy nor --profile, the built-in
"default" profile applies ("ringfence profiles" lists them). Flags come
before CMD; everything from CMD on is CMD's.

Fails closed: if the kernel lacks io_uring BPF filters (before Linux 7.0), a
filter is refused, or anything else goes wrong, CMD is not run. A kernel
that drops task filters at execve once a thread used io_uring (Debian's
7.0.13; the fix "io_uring: preserve task restrictions across exec" is in
7.1) is refused too: CMD could shed its policy. run finds that out by
behaviour, in a throwaway child. --allow-exec-drop runs anyway, with a
warning: only for programs you trust not to try.

What run cannot stop (docs/runtime-guide.md, "Threat model"): CMD taking
over a process that it may ptrace (same user with
kernel.yama.ptrace_scope 0, or root) and using that process's io_uring;
run warns then.

With --log-denials, a process started before CMD writes one line per
io_uring request the policy denies (which rule or the default, the request's
fields, the process), until CMD exits; it needs what "ringfence monitor"
needs (root, tracefs), and CMD is not run when the log cannot start.

Exit status: CMD's own status when it ran; 125 when ringfence failed and CMD
was not run (bad usage included; the message says why); 126 when CMD could
not be executed; 127 when CMD was not found.`,
		setup: func(fs *flag.FlagSet) action {
			o := runOptions{}
			fs.StringVar(&o.policyFile, "policy", "", "policy `FILE` (YAML or JSON)")
			fs.StringVar(&o.profile, "profile", "", "built-in profile `NAME` (default \"default\")")
			fs.StringVar(&o.ringFDs, "ring-fds", "close", "`MODE` for inherited io_uring descriptors: close (close them) or refuse (do not run CMD)")
			fs.BoolVar(&o.ifSupported, "if-supported", false, "on kernels without io_uring filters, run CMD unfiltered (with a warning)")
			fs.Var(&o.logDenials, "log-denials", "log every io_uring request the policy denies, to standard error or (--log-denials=`FILE`) appended to FILE (needs root and tracefs: see \"ringfence help monitor\")")
			fs.StringVar(&o.logFormat, "log-format", "text", "denial log `FORMAT`: text or json (one JSON object per line)")
			fs.BoolVar(&o.allowExecDrop, "allow-exec-drop", false, "UNSAFE: run even on a kernel that drops io_uring task filters at execve (Linux 7.0 without the fix), where CMD can escape the policy (with a warning)")
			return func(e *env, args []string) error {
				return runUnder(e, args, o, k)
			}
		},
	}
}

// runOptions are the flags of "ringfence run".
type runOptions struct {
	policyFile, profile, ringFDs string
	ifSupported, allowExecDrop   bool
	logDenials                   optionalFile
	logFormat                    string
}

// optionalFile is a flag that may be given alone (--log-denials: standard
// error) or with a file (--log-denials=FILE).
type optionalFile struct {
	set  bool
	path string
}

func (f *optionalFile) String() string { return f.path }

// IsBoolFlag lets the flag stand alone.
func (f *optionalFile) IsBoolFlag() bool { return true }

func (f *optionalFile) Set(s string) error {
	f.set = true
	switch s {
	case "true":
		f.path = ""
	case "false":
		f.set = false
	default:
		f.path = s
	}
	return nil
}

// runUnder runs argv under the policy o names, through kernel k.
func runUnder(e *env, argv []string, o runOptions, k ringfence.Kernel) error {
	if len(argv) == 0 {
		return usagef("no command given")
	}
	if o.policyFile != "" && o.profile != "" {
		return usagef("give --policy or --profile, not both")
	}
	mode, err := ringfence.ParseRingFDMode(o.ringFDs)
	if err != nil {
		return usagef("--ring-fds: %v", err)
	}
	var p *policy.Policy
	switch {
	case o.policyFile != "":
		p, err = ringfence.LoadPolicy(o.policyFile)
	case o.profile != "":
		p, err = ringfence.Profile(o.profile)
	default:
		p, err = ringfence.Profile(profiles.DefaultName)
	}
	if err != nil {
		return fmt.Errorf("%v; %s was not run", err, argv[0])
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef("--log-format %q: want text or json", o.logFormat)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, iofs.ErrNotExist) {
			return fail(exitNotFound, fmt.Errorf("%v; not run", err))
		}
		return fail(exitNotExecable, fmt.Errorf("%v; not run", err))
	}
	if o.logDenials.set {
		w := watchOptions{policyArg: policyArgOf(o, profiles.DefaultName), format: o.logFormat, out: o.logDenials.path, pid: os.Getpid()}
		if err := startDenialLog(e, w); err != nil {
			return fmt.Errorf("--log-denials: %v; %s was not run", err, argv[0])
		}
	}
	// ringfence execs itself first ("__exec-check"), and only that process,
	// having checked that the task filters survived execve, execs CMD:
	// Linux 7.0 drops them at execve (seen on 7.0.13).
	self, selfArgs, err := selfArgv("__exec-check")
	if err != nil {
		return fmt.Errorf("%v; %s was not run", err, argv[0])
	}
	if o.ifSupported {
		selfArgs = append(selfArgs, "--if-supported")
	}
	if v, err := k.Version(); err == nil {
		if plan, err := ringfence.Compile(p, v); err == nil && plan.Empty() {
			selfArgs = append(selfArgs, "--nothing-registered")
		}
	}
	selfArgs = append(append(selfArgs, "--", path), argv...)
	if w := kernel.PtraceWarning(); w != "" {
		fmt.Fprintf(e.stderr, "ringfence run: warning: %s\n", w)
	}
	err = ringfence.ExecUnder(k, ringfence.ExecSpec{
		Policy:        p,
		Path:          self,
		Args:          selfArgs,
		Name:          argv[0],
		Env:           os.Environ(),
		RingFDs:       mode,
		IfSupported:   o.ifSupported,
		AllowExecDrop: o.allowExecDrop,
		Warn:          func(msg string) { fmt.Fprintf(e.stderr, "ringfence run: warning: %s\n", msg) },
	})
	err = fmt.Errorf("%w; %s was not run", err, argv[0])
	var se *ringfence.StepError
	if errors.As(err, &se) && se.Step == ringfence.StepExec {
		return fail(exitNotExecable, err)
	}
	return err
}

// execCheckCommand is the internal "__exec-check [--if-supported] --
// PATH ARGV..." that "ringfence run" execs after registering the policy:
// it checks that the io_uring task filters survived execve, then execs
// PATH. If they did not, PATH is not run (unless --if-supported, with a
// warning).
func execCheckCommand() *command {
	return &command{
		name:       "__exec-check",
		args:       "-- PATH ARGV0 [ARGS...]",
		summary:    "the second stage of run",
		hidden:     true,
		speaksAs:   "run",
		argsEnd:    true,
		failStatus: exitRunFailed,
		help: `The second stage of "ringfence run", which execs it: checks that the
io_uring task filters survived execve, then execs PATH with ARGV0 ARGS.

Exit status: 125 when the filters are gone (PATH is not run), 126 when PATH
could not be executed.`,
		setup: func(fs *flag.FlagSet) action {
			ifSupported := fs.Bool("if-supported", false, "run PATH even without filters, on a kernel that has none (the first stage warned)")
			nothing := fs.Bool("nothing-registered", false, "the policy registers nothing: there is nothing to check")
			return func(e *env, args []string) error {
				if len(args) < 2 {
					return usagef("internal command of ringfence run: give PATH and ARGV0")
				}
				return execChecked(e, args[0], args[1:], *ifSupported, *nothing)
			}
		},
	}
}

// execChecked execs path if this task still carries its io_uring filters
// (or nothing was registered, or the kernel has no filters and
// ifSupported). It finds out by behaviour (ringfence.VerifyFiltered: the
// canary request must be refused), not by asking a system call whose
// answer a launcher's seccomp filter could forge.
func execChecked(e *env, path string, argv []string, ifSupported, nothing bool) error {
	switch {
	case nothing:
		// The policy registers nothing (default allow, no rules, no
		// register section): there is nothing to lose at execve.
	case ifSupported && kernel.Supported() != nil:
		// No filters at all: the first stage warned already.
	default:
		err := ringfence.VerifyFiltered()
		switch {
		case errors.Is(err, ringfence.ErrFiltersMissing):
			rel, _ := kernel.Release()
			return fmt.Errorf("%v, so %s would run unfiltered: this kernel (%s) dropped the io_uring task filters at execve (it lacks the fix %q), or a seccomp filter outside ringfence faked their registration; %s was not run", err, argv[0], rel, ringfence.KernelFixExecDrop, argv[0])
		case err != nil:
			return fmt.Errorf("cannot check that the io_uring task filters survived execve: %v; %s was not run", err, argv[0])
		}
	}
	err := kernel.Exec(path, argv, os.Environ())
	return fail(exitNotExecable, fmt.Errorf("%v; %s was not run", err, argv[0]))
}

// startDenialLog starts "__denial-log" for the run process (which becomes
// the program at exec, keeping its pid) and waits until its trace is set
// up, so that no denial of the program goes unlogged.
func startDenialLog(e *env, o watchOptions) error {
	self, args, err := selfArgv("__denial-log")
	if err != nil {
		return err
	}
	c := exec.Command(self, append(args[1:], o.args()...)...)
	c.Stderr = e.stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 6)
		n, err := io.ReadFull(out, b)
		if err == nil && string(b[:n]) != "ready\n" {
			err = fmt.Errorf("unexpected %q", b[:n])
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			c.Process.Kill()
			c.Wait()
			return fmt.Errorf("the denial log did not start (see above)")
		}
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		c.Wait()
		return fmt.Errorf("the denial log did not start within 30 s")
	}
	out.Close()
	// The log process outlives this one: it exits when the program does.
	return c.Process.Release()
}
