package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/learn"
	"github.com/ringfence/ringfence/internal/uringtrace"
	"github.com/ringfence/ringfence/kernel"
)

// recordCommand is "ringfence record".
func recordCommand() *command {
	return &command{
		name:       "record",
		args:       "[--] CMD [ARGS...]",
		summary:    "write a least-privilege policy from what a program does",
		argsEnd:    true,
		failStatus: exitRunFailed,
		help: `Runs CMD (and everything it starts) and records every io_uring request it
submits, with the fields filters see: opcode, sqe_flags, and the data of
SOCKET, OPENAT, OPENAT2 and CONNECT, including what its SQPOLL threads submit,
and its io_uring_register calls. Then writes the least-privilege policy that
allows exactly what was seen: default deny; rules grouped by purpose, each
with a comment of what was seen and how often; sockets as the exact
families, types and protocols; opens as "none of the risky flags not seen"
(write, create, truncate, append, tmpfile); connects as the destinations
seen (Linux 7.2+ filters see them; --connect-networks widens addresses to
networks; for an older --kernel, CONNECT stays unconditional and its comment
lists them); the register operations seen.

--merge adds the runs recorded in policies written earlier by record (the
replicas of a service, the parts of a test suite): the result allows the
union.

Review the policy ("ringfence check", "ringfence explain"), test it
("ringfence test", "ringfence verify"), run under it with "ringfence run
--log-denials" and watch what it denies (docs/record.md).

Recording needs root, a mounted tracefs (/sys/kernel/tracing) and a kernel
with kprobe events; no compiler, eBPF or BTF. It fails, saying why, and does
not run CMD, when it cannot record.

Exit status: CMD's own status when it ran (the policy is written either way;
1 instead of 0 when the kernel dropped trace events, so the policy may lack
requests); 125 when ringfence failed or was used wrongly (CMD was not run if
recording could not start); 126 when CMD could not be executed, 127 when it
was not found.

Recording ends when CMD exits: run a server in the foreground (a daemon
that forks away and outlives CMD is not recorded after CMD's exit).`,
		setup: func(fs *flag.FlagSet) action {
			o := recordOptions{}
			fs.StringVar(&o.out, "o", "", "write the policy to `FILE` (YAML; JSON if it ends in .json; \"-\": YAML on standard output)")
			fs.Func("merge", "add the runs recorded in policy `FILE` (repeatable)", func(s string) error {
				o.merge = append(o.merge, s)
				return nil
			})
			fs.StringVar(&o.kernel, "kernel", "", "the oldest kernel `VERSION` the policy is for (default: the running one); CONNECT conditions need 7.2")
			fs.StringVar(&o.networks, "connect-networks", "", "widen CONNECT addresses to networks of these prefix lengths, `V4,V6` (e.g. 24,64)")
			fs.StringVar(&o.name, "name", "", "the policy's `NAME` (default: from CMD)")
			return func(e *env, args []string) error {
				return recordRun(e, args, o)
			}
		},
	}
}

// recordOptions are the flags of "ringfence record".
type recordOptions struct {
	out, kernel, networks, name string
	merge                       []string
}

func recordRun(e *env, argv []string, o recordOptions) error {
	if len(argv) == 0 {
		return usagef("no command given")
	}
	if o.out == "" {
		return usagef("give the policy file to write with -o FILE (- for standard output)")
	}
	running, err := kernel.Version()
	if err != nil {
		return err
	}
	opts := learn.Options{Kernel: running, Name: o.name}
	if o.kernel != "" {
		v, err := abi.ParseVersion(o.kernel)
		if err != nil {
			return usagef("--kernel: %v", err)
		}
		opts.Kernel = v
	}
	if o.networks != "" {
		v4, v6, ok := strings.Cut(o.networks, ",")
		n4, err4 := strconv.Atoi(v4)
		n6, err6 := strconv.Atoi(v6)
		if !ok || err4 != nil || err6 != nil || n4 < 0 || n4 > 32 || n6 < 0 || n6 > 128 {
			return usagef("--connect-networks %q: want V4,V6 prefix lengths, such as 24,64 (0 keeps addresses exact)", o.networks)
		}
		opts.Network4, opts.Network6 = n4, n6
	}
	if opts.Name == "" {
		opts.Name = "recorded: " + argv[0]
	}
	rec := learn.New()
	rec.Kernel = running
	var merged []*learn.Recording
	for _, m := range o.merge {
		p, _, _, err := e.loadPolicy(m)
		if err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
		r, err := learn.FromPolicy(p)
		if err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
		merged = append(merged, r)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return fail(exitNotFound, fmt.Errorf("%v; not run", err))
		}
		return fail(exitNotExecable, fmt.Errorf("%v; not run", err))
	}

	s, err := uringtrace.Open(uringtrace.Record)
	if err != nil {
		return fmt.Errorf("%v; %s was not run", err, argv[0])
	}
	defer s.Close()
	for _, w := range s.Warnings {
		fmt.Fprintf(e.stderr, "ringfence record: warning: %s\n", w)
		if strings.HasPrefix(w, "register operations") {
			rec.RegisterSeen = false
		}
	}
	// Interrupts reach CMD from the terminal; record waits for CMD and
	// writes the policy. A SIGTERM sent to record alone is passed on.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	c := exec.Command(path, argv[1:]...)
	c.Args[0] = argv[0]
	c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
	if err := c.Start(); err != nil {
		return fmt.Errorf("%v; not run", err)
	}
	tr := uringtrace.NewTracker(s.Group(), uringtrace.Follow(c.Process.Pid))
	// CONNECT's destination is recorded even where filters cannot see it
	// (before 7.2): the comment lists it, and a policy for 7.2 uses it.
	connectView := running
	if connectView.Less(abi.Version{Major: 7, Minor: 2}) {
		connectView = abi.Version{Major: 7, Minor: 2}
	}
	var denied, noArgs int
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Run(tr, stop, func(ev uringtrace.Event) {
			switch ev.Kind {
			case uringtrace.Submitted:
				if !ev.Args {
					noArgs++
					return
				}
				k := running
				if ev.Req.Op == abi.OpConnect {
					k = connectView
				}
				rec.Add(ev.PolicyRequest(k), ev.SQThread)
			case uringtrace.Registered:
				if ev.RegisterOp < 256 {
					rec.AddRegister(abi.RegisterOp(ev.RegisterOp))
				}
			case uringtrace.Denied:
				denied++
			}
		})
	}()
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	var werr error
wait:
	for {
		select {
		case werr = <-waited:
			break wait
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				c.Process.Signal(sig)
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		return fmt.Errorf("reading the trace: %v; no policy written", err)
	}
	if err := s.Close(); err != nil {
		fmt.Fprintf(e.stderr, "ringfence record: warning: cleaning up tracefs: %v\n", err)
	}
	status := 0
	var xe *exec.ExitError
	switch {
	case errors.As(werr, &xe):
		status = xe.ExitCode()
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	case werr != nil:
		return fmt.Errorf("waiting for %s: %v; no policy written", argv[0], werr)
	}

	rec.Commands = []string{strings.Join(argv, " ")}
	total := rec.Total()
	for _, m := range merged {
		rec.Merge(m)
	}
	p := rec.Policy(opts)
	write := p.YAML
	if strings.HasSuffix(o.out, ".json") {
		write = p.JSON
	}
	out, err := write()
	if err != nil {
		return fmt.Errorf("writing the policy: %v", err)
	}
	if o.out == "-" {
		_, err = e.stdout.Write(out)
	} else {
		err = os.WriteFile(o.out, out, 0o644)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "ringfence record: %s\n", summary(rec, total, len(merged), o.out))
	for _, d := range p.Lint() {
		if d.Code == "needs-7.2" && !opts.Kernel.Less(abi.Version{Major: 7, Minor: 2}) {
			continue // written for 7.2+ on purpose
		}
		fmt.Fprintf(e.stderr, "ringfence record: review: %s\n", d.Message)
	}
	if denied > 0 {
		fmt.Fprintf(e.stderr, "ringfence record: warning: %d requests were denied while recording (CMD already runs under an io_uring filter): they are not in the policy\n", denied)
	}
	if noArgs > 0 {
		fmt.Fprintf(e.stderr, "ringfence record: warning: the arguments of %d SOCKET/OPENAT/OPENAT2/CONNECT requests were lost from the trace: they are not in the policy\n", noArgs)
	}
	if tr.Lost > 0 {
		fmt.Fprintf(e.stderr, "ringfence record: warning: the kernel dropped %d trace events (buffer full): the policy may lack requests\n", tr.Lost)
		if status == 0 {
			status = exitDenied
		}
	}
	if status != 0 {
		return exitStatus(status)
	}
	return nil
}

// summary is record's last line: what was recorded and where it went.
func summary(rec *learn.Recording, total, merged int, out string) string {
	sq := 0
	for _, n := range rec.SQPoll {
		sq += n
	}
	regs := 0
	for _, n := range rec.Register {
		regs += n
	}
	where := out
	if out == "-" {
		where = "standard output"
	}
	s := fmt.Sprintf("recorded %d io_uring requests", total)
	if merged > 0 {
		s += fmt.Sprintf(" (merged with %d policies: %d in all)", merged, rec.Total())
	}
	return s + fmt.Sprintf(", %d opcodes, %d by SQPOLL threads, %d register calls; wrote %s", len(rec.Ops), sq, regs, where)
}
