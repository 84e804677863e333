package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/denylog"
	"github.com/ringfence/ringfence/internal/uringtrace"
	"github.com/ringfence/ringfence/kernel"
)

// monitorCommand is "ringfence monitor".
func monitorCommand() *command {
	return &command{
		name:    "monitor",
		summary: "log the io_uring requests filters deny, for running processes",
		help: `Watches running processes and writes one line per io_uring request a filter
(or a ring's own restrictions) denies: the time, the process and thread (and
whether a SQPOLL thread submitted it), its cgroup and container id when
known, the request with its fields, and, with --policy, the rule or the
default of that policy that denied it. Text for people, or JSON lines
(--format json) for log shippers. It runs until interrupted (SIGINT,
SIGTERM) or, with --pid, until that process exits.

Choose what to watch: --pid N (that process and its descendants, those
running now and those it starts), --cgroup PATH (every process in that
cgroup v2 subtree, as /proc/PID/cgroup names it: a container's or a
service's), --container ID (the processes whose cgroup names that container
id, as runc, crun, containerd and Podman name theirs), or --all.

A denial is told apart from other -EACCES results by where it happens:
filters refuse a request at submission, which the kernel's
io_uring_req_failed tracepoint reports, while a request that ran and failed
(an unreadable file) completes later and is not logged. It needs root, a
mounted tracefs (/sys/kernel/tracing) and a kernel with kprobe events
(Debian's have them); no BTF, compiler or eBPF. See docs/record.md.

Exit status: 0 when stopped, 1 when the trace failed, 2 for bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			o := watchOptions{}
			o.flags(fs)
			fs.IntVar(&o.pid, "pid", 0, "watch process `PID` and its descendants")
			fs.StringVar(&o.cgroup, "cgroup", "", "watch the processes in cgroup `PATH` (e.g. /system.slice/db.service)")
			fs.StringVar(&o.container, "container", "", "watch the processes of container `ID` (12 or more hex digits of its id)")
			fs.BoolVar(&o.all, "all", false, "watch every process")
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				n := 0
				for _, b := range []bool{o.pid != 0, o.cgroup != "", o.container != "", o.all} {
					if b {
						n++
					}
				}
				if n != 1 {
					return usagef("give one of --pid, --cgroup, --container or --all")
				}
				if o.container != "" && !containerIDRE.MatchString(o.container) {
					return usagef("--container %q: want 12 to 64 lowercase hex digits of a container id", o.container)
				}
				return watchDenials(e, o, nil)
			}
		},
	}
}

// denialLogCommand is the internal "__denial-log" that "ringfence run
// --log-denials" starts before it execs the program.
func denialLogCommand() *command {
	return &command{
		name:     "__denial-log",
		summary:  "the denial log of run",
		hidden:   true,
		speaksAs: "run",
		help: `Started by "ringfence run --log-denials": watches --pid (the run process,
which becomes the program) from its next execve on, so that ringfence's own
checks before it (which deny requests on purpose) are not logged. Writes
"ready" on standard output once the trace is set up, then logs denials
until that process exits.

Exit status: 0 when the process exited, 1 when the trace failed, 2 for bad
usage.`,
		setup: func(fs *flag.FlagSet) action {
			o := watchOptions{}
			o.flags(fs)
			fs.IntVar(&o.pid, "pid", 0, "watch process `PID` from its next execve on")
			return func(e *env, args []string) error {
				o.fromExec = true
				if o.pid == 0 || len(args) != 0 {
					return usagef("internal command of ringfence run: give --pid")
				}
				return watchDenials(e, o, func() { fmt.Fprintln(e.stdout, "ready") })
			}
		},
	}
}

// watchOptions are what the denial log watches and how it writes.
type watchOptions struct {
	policyArg, format, out string
	pid                    int
	cgroup, container      string
	all                    bool
	// fromExec: follow pid from its next execve on (run's log).
	fromExec bool
}

// containerIDRE is a container id or its short form.
var containerIDRE = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

func (o *watchOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.policyArg, "policy", "", "the policy the processes run under (`FILE`, or profile:NAME), to name the rule that denied")
	fs.StringVar(&o.format, "format", "text", "log `FORMAT`: text or json (one JSON object per line)")
	fs.StringVar(&o.out, "o", "", "append the log to `FILE` (default: standard error)")
}

// args returns the flags that give o to __denial-log.
func (o watchOptions) args() []string {
	a := []string{"--format", o.format, "--pid", fmt.Sprint(o.pid)}
	if o.policyArg != "" {
		a = append(a, "--policy", o.policyArg)
	}
	if o.out != "" {
		a = append(a, "-o", o.out)
	}
	return a
}

// watchDenials logs the denials of the processes o names until it is
// interrupted or the --pid process exits. ready, if not nil, is called
// once the trace is set up.
func watchDenials(e *env, o watchOptions, ready func()) error {
	if o.format != "text" && o.format != "json" {
		return usagef("--format %q: want text or json", o.format)
	}
	a := &denylog.Attributor{}
	if o.policyArg != "" {
		p, _, name, err := e.loadPolicy(o.policyArg)
		if err != nil {
			return err
		}
		a.Policy, a.Name = p, name
	}
	k, err := kernel.Version()
	if err != nil {
		return fail(exitDenied, err)
	}
	a.Kernel = k
	var w io.Writer = e.stderr
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fail(exitDenied, err)
		}
		defer f.Close()
		w = f
	}
	var follow *uringtrace.Follower
	var alive func() bool
	switch {
	case o.pid != 0 && o.fromExec:
		// run's log: the program from its execve on, not ringfence's
		// own checks before (they deny requests on purpose).
		alive, err = processAlive(o.pid)
		if err != nil {
			return fail(exitDenied, err)
		}
		follow = uringtrace.FollowFromExec(o.pid)
	case o.pid != 0:
		alive, err = processAlive(o.pid)
		if err != nil {
			return fail(exitDenied, err)
		}
		follow = uringtrace.FollowTree("/proc", o.pid)
	case o.cgroup != "":
		follow = uringtrace.FollowCgroup("/proc", o.cgroup)
	case o.container != "":
		follow = uringtrace.FollowContainer("/proc", o.container)
	default:
		follow = uringtrace.FollowAll()
	}
	s, err := uringtrace.Open(uringtrace.Denials)
	if err != nil {
		return fail(exitDenied, err)
	}
	defer s.Close()
	for _, warn := range s.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", warn)
	}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sigs:
				close(stop)
				return
			case <-tick.C:
				if alive != nil && !alive() {
					close(stop)
					return
				}
			}
		}
	}()
	if ready != nil {
		ready()
	}
	tr := uringtrace.NewTracker(s.Group(), follow)
	lw := denylog.Writer{W: w, JSON: o.format == "json"}
	var werr error
	err = s.Run(tr, stop, func(ev uringtrace.Event) {
		if !logged(ev, a.Kernel) || werr != nil {
			return
		}
		werr = lw.Write(a.Entry(ev))
	})
	if tr.Lost > 0 {
		fmt.Fprintf(e.stderr, "warning: the kernel dropped %d trace events (buffer full): denials may be missing from the log\n", tr.Lost)
	}
	if err := errors.Join(err, werr, s.Close()); err != nil {
		return fail(exitDenied, err)
	}
	return nil
}

// processAlive returns a function telling whether process pid still runs
// (not exited, not a zombie, not replaced by another process with its pid).
func processAlive(pid int) (func() bool, error) {
	start := func() (string, bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return "", false
		}
		s := string(b)
		i := strings.LastIndex(s, ")")
		if i < 0 {
			return "", false
		}
		f := strings.Fields(s[i+1:])
		// f[0] is the state, f[19] the start time (field 22 of stat).
		if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
			return "", false
		}
		return f[19], true
	}
	first, ok := start()
	if !ok {
		return nil, fmt.Errorf("no process %d", pid)
	}
	return func() bool {
		now, ok := start()
		return ok && now == first
	}, nil
}

// policyArgOf returns how __denial-log names the policy "run" was given.
func policyArgOf(o runOptions, defaultProfile string) string {
	switch {
	case o.policyFile != "":
		return o.policyFile
	case o.profile != "":
		return "profile:" + o.profile
	}
	return "profile:" + defaultProfile
}

// logged reports whether the denial log writes ev: denials, but not that
// of ringfence's own canary request (ringfence.CanaryUserData), which
// "ringfence run" and the library submit to check that the filters are in
// place.
func logged(ev uringtrace.Event, k abi.Version) bool {
	return ev.Kind == uringtrace.Denied && !ringfence.IsCanary(ev.PolicyRequest(k))
}
