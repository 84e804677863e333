// Package uringtrace watches io_uring requests with the kernel's tracefs:
// the io_uring tracepoints, kprobe events on the preparation functions of
// the opcodes whose data filters see, and a return probe on the function
// that runs the filters. It is how "ringfence record" learns what a
// program submits and how the denial log sees what filters refuse.
//
// Why tracefs (docs/record.md has the whole argument): it needs no
// compiler and no eBPF loader, it sees requests from every submitter
// (io_uring_enter callers and SQPOLL threads alike), and every kernel with
// io_uring filters (7.0+) has the pieces. It needs root, a mounted tracefs
// and a kernel built with kprobe events (Debian's are).
//
// What it sees:
//   - io_uring:io_uring_submit_req, after a request passed the filters:
//     opcode, user_data and req->flags, whose IOSQE_* bits are exactly the
//     sqe_flags filters see (the kernel's IOSQE_ASYNC for O_CREAT included);
//   - kprobes on io_socket_prep, io_openat_prep, io_openat2_prep and
//     io_connect_prep: the SQE's arguments (and, read from the process's
//     memory, struct open_how and the socket address), turned into the
//     filter context by kernel.Request.Ctx;
//   - io_uring:io_uring_req_failed with error -13: a request refused at
//     submission; together with a return probe on
//     __io_uring_run_bpf_filters (returning -13) it tells a BPF filter's
//     denial from the ring's own restrictions;
//   - syscalls:sys_enter_io_uring_register: register operations;
//   - sched:sched_process_fork and sched_process_exec: to follow a
//     program's children, and a program from its execve on;
//   - cgroup:cgroup_attach_task: processes moved into a watched cgroup.
package uringtrace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Names of the probe events (in the session's own group).
const (
	probeSocket  = "rf_socket"
	probeOpenat  = "rf_openat"
	probeOpenat2 = "rf_openat2"
	probeConnect = "rf_connect"
	probeFilter  = "rf_filter"
)

// probeDef is one kprobe event: its name, the kernel function, and what it
// fetches. $arg2 is the SQE (const struct io_uring_sqe *); offsets are the
// SQE's: fd 4, off/addr2 8, addr 16, len 24, op_flags 28. "+u" reads the
// submitting process's memory (struct open_how, the socket address).
type probeDef struct {
	name, fn, fetch string
	ret             bool
	// forDenials: only the denial log needs it.
	forDenials bool
}

var probeDefs = []probeDef{
	{name: probeSocket, fn: "io_socket_prep", fetch: "fd=+4($arg2):s32 off=+8($arg2):x64 len=+24($arg2):u32"},
	{name: probeOpenat, fn: "io_openat_prep", fetch: "fd=+4($arg2):s32 len=+24($arg2):u32 flags=+28($arg2):x32"},
	{name: probeOpenat2, fn: "io_openat2_prep", fetch: "fd=+4($arg2):s32 len=+24($arg2):u32 flags=+u0(+8($arg2)):x64 mode=+u8(+8($arg2)):x64 resolve=+u16(+8($arg2)):x64"},
	{name: probeConnect, fn: "io_connect_prep", fetch: "fd=+4($arg2):s32 addrlen=+8($arg2):u64 sa0=+u0(+16($arg2)):x64 sa1=+u8(+16($arg2)):x64 sa2=+u16(+16($arg2)):x64 sa3=+u24(+16($arg2)):x32"},
	{name: probeFilter, fn: "__io_uring_run_bpf_filters", fetch: "ret=$retval:s32", ret: true, forDenials: true},
}

// Mode says what a session is for.
type Mode uint8

// The modes.
const (
	// Record: every submitted request, its arguments and register calls.
	Record Mode = iota + 1
	// Denials: requests refused with EACCES, with their arguments.
	Denials
)

// ErrCannotTrace wraps every reason a session cannot start.
var ErrCannotTrace = errors.New("cannot trace io_uring requests")

// Session is a private tracefs instance with ringfence's probe events.
// Close removes both.
type Session struct {
	root   string // tracefs mount point
	inst   string // the instance directory
	group  string // the kprobe event group
	probes []string
	pipe   *os.File
	lines  chan string
	marker string
	// Warnings say what the session will not see (register calls on a
	// kernel without syscall tracepoints, ...).
	Warnings []string
}

// Group returns the session's probe group, for NewTracker.
func (s *Session) Group() string { return s.group }

// FindTracefs returns where tracefs is mounted, from /proc/self/mountinfo
// (preferring /sys/kernel/tracing).
func FindTracefs() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("%w: reading the mount table: %v", ErrCannotTrace, err)
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == "tracefs" {
			found = append(found, pf[4])
		}
	}
	for _, m := range found {
		if m == "/sys/kernel/tracing" {
			return m, nil
		}
	}
	if len(found) > 0 {
		return found[0], nil
	}
	return "", fmt.Errorf("%w: tracefs is not mounted (as root: mount -t tracefs nodev /sys/kernel/tracing)", ErrCannotTrace)
}

// Open starts a session for mode m: it adds the probe events (group
// "ringfence_PID"), makes an instance "ringfence-PID" with them and the
// io_uring, syscall and fork events enabled, and starts reading it. It
// fails, saying why, without root, without tracefs, on a kernel without
// kprobe events or io_uring tracepoints, or when a probed function is
// missing.
func Open(m Mode) (*Session, error) {
	root, err := FindTracefs()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (tracefs probe events and instances are root-only)", ErrCannotTrace)
	}
	removeStale(root)
	s := &Session{
		root:   root,
		group:  fmt.Sprintf("ringfence_%d", os.Getpid()),
		inst:   filepath.Join(root, "instances", fmt.Sprintf("ringfence-%d", os.Getpid())),
		marker: fmt.Sprintf("ringfence-end-%d", os.Getpid()),
	}
	if err := s.setup(m); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Session) setup(m Mode) error {
	for _, need := range []string{"kprobe_events", "events/io_uring/io_uring_submit_req", "events/io_uring/io_uring_req_failed"} {
		if _, err := os.Stat(filepath.Join(s.root, need)); err != nil {
			what := "kprobe events (CONFIG_KPROBE_EVENTS)"
			if strings.HasPrefix(need, "events/") {
				what = "the io_uring tracepoint " + filepath.Base(need)
			}
			return fmt.Errorf("%w: this kernel has no %s (%v)", ErrCannotTrace, what, err)
		}
	}
	for _, p := range probeDefs {
		if p.forDenials && m != Denials {
			continue
		}
		kind := "p"
		if p.ret {
			kind = "r"
		}
		def := fmt.Sprintf("%s:%s/%s %s %s", kind, s.group, p.name, p.fn, p.fetch)
		if err := appendFile(filepath.Join(s.root, "kprobe_events"), def); err != nil {
			return fmt.Errorf("%w: adding the probe on %s: %v%s", ErrCannotTrace, p.fn, err, s.errorLog())
		}
		s.probes = append(s.probes, p.name)
	}
	if err := os.Mkdir(s.inst, 0o700); err != nil {
		return fmt.Errorf("%w: making the tracefs instance: %v", ErrCannotTrace, err)
	}
	steps := []struct{ file, value string }{
		{"options/record-tgid", "1"},
		{"buffer_size_kb", "4096"},
		{"events/io_uring/io_uring_req_failed/filter", "error == -13"},
		{"events/" + s.group + "/enable", "1"},
		{"events/sched/sched_process_fork/enable", "1"},
		{"events/sched/sched_process_exec/enable", "1"},
		{"events/io_uring/io_uring_req_failed/enable", "1"},
	}
	if m == Record {
		steps = append(steps, struct{ file, value string }{"events/io_uring/io_uring_submit_req/enable", "1"})
	} else {
		steps = append(steps, struct{ file, value string }{"events/" + s.group + "/" + probeFilter + "/filter", "ret != 0"})
	}
	for _, st := range steps {
		if err := os.WriteFile(filepath.Join(s.inst, st.file), []byte(st.value), 0); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCannotTrace, st.file, err)
		}
	}
	// Processes moved into a watched cgroup (a container's first
	// process); without the event, a cgroup watch reads /proc instead.
	if err := os.WriteFile(filepath.Join(s.inst, "events/cgroup/cgroup_attach_task/enable"), []byte("1"), 0); err != nil && m == Denials {
		s.Warnings = append(s.Warnings, fmt.Sprintf("no cgroup_attach_task events (%v): a process moved into a watched cgroup is found from /proc, if it still runs when its denial is read", err))
	}
	if m == Record {
		reg := filepath.Join(s.inst, "events/syscalls/sys_enter_io_uring_register/enable")
		if err := os.WriteFile(reg, []byte("1"), 0); err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("register operations are not recorded: this kernel has no syscall tracepoints (%v)", err))
		}
	}
	pipe, err := os.Open(filepath.Join(s.inst, "trace_pipe"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCannotTrace, err)
	}
	s.pipe = pipe
	s.lines = make(chan string, 4096)
	go func() {
		defer close(s.lines)
		r := bufio.NewReaderSize(pipe, 1<<16)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				s.lines <- strings.TrimRight(line, "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// Lines returns the trace lines as the kernel writes them, in time order.
// The channel closes after Stop (or when reading fails).
func (s *Session) Lines() <-chan string { return s.lines }

// IsEnd reports whether line is the end marker Stop writes; the caller
// stops reading there.
func (s *Session) IsEnd(line string) bool {
	return strings.Contains(line, "tracing_mark_write: "+s.marker)
}

// Stop writes the end marker into the trace, so that a reader of Lines
// knows it has seen every event recorded before it.
func (s *Session) Stop() error {
	return os.WriteFile(filepath.Join(s.inst, "trace_marker"), []byte(s.marker), 0)
}

// Close disables and removes the instance and the probe events. It is safe
// to call more than once and after a failed Open.
func (s *Session) Close() error {
	var errs []error
	if _, err := os.Stat(s.inst); err == nil {
		if err := os.WriteFile(filepath.Join(s.inst, "events/enable"), []byte("0"), 0); err != nil {
			errs = append(errs, err)
		}
		if s.pipe != nil {
			s.pipe.Close()
		}
		if err := os.Remove(s.inst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", s.inst, err))
		}
	}
	for _, p := range s.probes {
		if err := appendFile(filepath.Join(s.root, "kprobe_events"), "-:"+s.group+"/"+p); err != nil {
			errs = append(errs, fmt.Errorf("removing probe %s/%s: %w", s.group, p, err))
		}
	}
	s.probes = nil
	return errors.Join(errs...)
}

// errorLog returns the last lines of tracefs's error_log, which says why a
// probe definition was refused.
func (s *Session) errorLog() string {
	b, err := os.ReadFile(filepath.Join(s.root, "error_log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return "\n" + strings.Join(lines, "\n")
}

func appendFile(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, werr := io.Copy(f, bytes.NewBufferString(line+"\n"))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// Run reads the session's trace through t and calls fn for every event of
// the followed processes, until stop is closed. It then writes the end
// marker and reads on to it, so that every event recorded before stop was
// closed is delivered. It returns an error only if the trace ends without
// the marker.
func (s *Session) Run(t *Tracker, stop <-chan struct{}, fn func(Event)) error {
	stopping := false
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return fmt.Errorf("the trace ended before its end marker")
			}
			if stopping && s.IsEnd(l) {
				return nil
			}
			if ev, ok := t.Feed(l); ok {
				fn(ev)
			}
		case <-stop:
			if !stopping {
				stopping = true
				if err := s.Stop(); err != nil {
					return fmt.Errorf("writing the end marker: %w", err)
				}
			}
			stop = nil
		}
	}
}

// removeStale removes the instances and probe events that sessions of
// processes no longer running left behind (a ringfence killed with
// SIGKILL cannot clean up), so that they do not accumulate.
func removeStale(root string) {
	dead := func(name, prefix string) bool {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if err != nil || !strings.HasPrefix(name, prefix) {
			return false
		}
		_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, fs.ErrNotExist)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "instances"))
	for _, e := range ents {
		if dead(e.Name(), "ringfence-") {
			inst := filepath.Join(root, "instances", e.Name())
			os.WriteFile(filepath.Join(inst, "events/enable"), []byte("0"), 0)
			os.Remove(inst)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "kprobe_events"))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "p:ringfence_123/rf_socket io_socket_prep ..."
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		_, ev, ok := strings.Cut(f[0], ":")
		group, _, _ := strings.Cut(ev, "/")
		if ok && dead(group, "ringfence_") {
			appendFile(filepath.Join(root, "kprobe_events"), "-:"+ev)
		}
	}
}
