package uringtrace

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// Kind says what an Event is.
type Kind uint8

// The kinds of events.
const (
	// Submitted: a request passed io_uring's submission checks (and the
	// filters, if any) and went on to run.
	Submitted Kind = iota + 1
	// Denied: a request failed submission with EACCES, before it ran.
	Denied
	// Registered: the process called io_uring_register.
	Registered
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Submitted:
		return "submitted"
	case Denied:
		return "denied"
	case Registered:
		return "register"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event is one io_uring request or register call of a followed process.
type Event struct {
	Kind Kind
	// Time is the trace clock (seconds since boot).
	Time float64
	// PID is the submitting thread; for a SQPOLL ring it is the ring's
	// iou-sqp thread, which belongs to the process (TGID) that made the ring.
	PID, TGID int
	Comm      string
	// SQThread is true when a SQPOLL thread submitted the request.
	SQThread bool
	// Req is the request as the SQE asked it: opcode, user_data, the
	// IOSQE_* flags and, for SOCKET, OPENAT, OPENAT2 and CONNECT, their
	// arguments (Path is never known). For Submitted, Req.Flags are the
	// flags the filters saw (the kernel's own additions, such as
	// IOSQE_ASYNC for O_CREAT, included); for Denied, the SQE's flags.
	Req kernel.Request
	// Args is false when the opcode has per-opcode data but its probe
	// event was not seen (lost from the buffer), so Req holds zeros there.
	Args bool
	// Filter is true for a Denied request that an io_uring BPF filter
	// refused (ringfence's or another's); false means the ring's own
	// restrictions (IORING_REGISTER_RESTRICTIONS) refused it.
	Filter bool
	// Op and FD are the operation (without IORING_REGISTER_USE_REGISTERED_RING)
	// and descriptor of a Registered event.
	RegisterOp uint32
	RegisterFD int
	// Cgroup is the process's cgroup when a cgroup Follower matched it
	// (read when it was first seen), else "".
	Cgroup string
}

// PolicyRequest returns what the filters of kernel k see for e's request,
// as the policy evaluator takes it (kernel.Request.Ctx's prediction).
func (e Event) PolicyRequest(k abi.Version) policy.Request {
	ne := binary.NativeEndian
	c, _ := e.Req.Ctx(k)
	r := policy.Request{Op: abi.Opcode(c.Opcode), UserData: c.UserData, SQEFlags: c.SQEFlags}
	switch e.Req.Op {
	case abi.OpSocket:
		r.Socket = c.Socket(ne)
	case abi.OpOpenat, abi.OpOpenat2:
		r.Open = c.Open(ne)
	case abi.OpConnect:
		r.Connect = c.Connect(ne)
	}
	return r
}

// Follower decides which threads are of interest: the processes it was
// given and everything they start (threads, children, and the io_uring
// threads of their rings, which share their thread group).
type Follower struct {
	all bool
	ids map[int]bool
	// match, when set, decides for a thread group not seen before (and
	// the answer is kept): the cgroup follower.
	match func(tgid int) (string, bool)
	known map[int]string
	// inCgroup says whether a cgroup path is followed (cgroup followers).
	inCgroup func(path string) bool
	// onExec are processes followed from their next execve on.
	onExec map[int]bool
}

// FollowFromExec returns a Follower of process pid and what it starts,
// from pid's next execve on: what it does (and starts) before is not
// followed. "ringfence run --log-denials" watches the program this way,
// not ringfence's own checks before it execs the program.
func FollowFromExec(pid int) *Follower {
	return &Follower{ids: map[int]bool{}, onExec: map[int]bool{pid: true}}
}

// exec follows pid if it was waiting for its execve.
func (f *Follower) exec(pid int) {
	if f.onExec[pid] {
		delete(f.onExec, pid)
		f.Add(pid)
	}
}

// Cgroup returns the cgroup a cgroup Follower matched process tgid in,
// read when the process was first seen (it may have exited since), or "".
func (f *Follower) Cgroup(tgid int) string { return f.known[tgid] }

// FollowCgroup returns a Follower of the processes in the cgroup v2 dir
// (a path as /proc/PID/cgroup shows it, "/system.slice/x.service") or
// below it: those in it now (read from proc, "/proc"), those its processes
// start, and those moved into it later (the cgroup_attach_task events the
// session reads). A process seen before any of these is looked up in proc.
func FollowCgroup(proc, dir string) *Follower {
	dir = strings.TrimSuffix(dir, "/")
	return followCgroups(proc, func(p string) bool {
		return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
	})
}

// FollowContainer returns a Follower of the processes whose cgroup v2 path
// holds container id (at least 12 of its hex digits, as "docker ps" shows
// them), as runc, crun, containerd and Podman name their cgroups; found as
// FollowCgroup finds its processes.
func FollowContainer(proc, id string) *Follower {
	return followCgroups(proc, func(p string) bool { return strings.Contains(p, id) })
}

// followCgroups follows the processes whose cgroup v2 path in holds.
func followCgroups(proc string, in func(path string) bool) *Follower {
	read := func(tgid int) (string, bool) {
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", proc, tgid))
		if err != nil {
			return "", false
		}
		if p, ok := CgroupPath(string(b)); ok {
			return p, in(p)
		}
		return "", false
	}
	f := &Follower{ids: map[int]bool{}, known: map[int]string{}, match: read, inCgroup: in}
	ents, _ := os.ReadDir(proc)
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if cg, ok := read(pid); ok {
				f.known[pid] = cg
			}
		}
	}
	return f
}

// CgroupPath returns the unified (v2) cgroup path in the text of a
// /proc/PID/cgroup file (its "0::PATH" line), and whether it has one.
func CgroupPath(text string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, true
		}
	}
	return "", false
}

// attach notes that thread pid moved into cgroup path.
func (f *Follower) attach(pid int, path string) {
	if f.inCgroup != nil && f.inCgroup(path) {
		f.known[pid] = path
	}
}

// FollowTree returns a Follower of pid and its descendants, those running
// now (found in proc, "/proc") and those it starts later.
func FollowTree(proc string, pid int) *Follower {
	f := Follow(pid)
	children := map[int][]int{}
	ents, _ := os.ReadDir(proc)
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", proc, p))
		if err != nil {
			continue
		}
		// "PID (COMM) STATE PPID ...": COMM may hold spaces and ")".
		s := string(b)
		i := strings.LastIndex(s, ")")
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(fields[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !f.ids[c] {
				f.ids[c] = true
				queue = append(queue, c)
			}
		}
	}
	return f
}

// FollowAll returns a Follower that matches every thread.
func FollowAll() *Follower { return &Follower{all: true} }

// Follow returns a Follower of the given processes and their descendants.
func Follow(pids ...int) *Follower {
	f := &Follower{ids: map[int]bool{}}
	for _, p := range pids {
		f.ids[p] = true
	}
	return f
}

// Add follows pid (a thread or a process) from now on.
func (f *Follower) Add(pid int) {
	if !f.all {
		f.ids[pid] = true
	}
}

// Has reports whether thread pid of thread group tgid is followed: the
// thread itself or its process.
func (f *Follower) Has(pid, tgid int) bool {
	if f.all || f.ids[pid] || (tgid != 0 && f.ids[tgid]) {
		return true
	}
	if f.match == nil {
		return false
	}
	g := tgid
	if g == 0 {
		g = pid
	}
	// Only positive answers are kept: a process can join the cgroup after
	// it was first seen (runtimes move a container's first process in
	// before it execs the workload).
	if _, ok := f.known[g]; ok {
		return true
	}
	if cg, ok := f.match(g); ok {
		f.known[g] = cg
		return true
	}
	return false
}

// hasKnown is Has without asking match: for fork events, which every
// process on the machine makes.
func (f *Follower) hasKnown(pid, tgid int) bool {
	if f.all || f.ids[pid] || (tgid != 0 && f.ids[tgid]) {
		return true
	}
	_, ok := f.known[tgid]
	return tgid != 0 && ok
}

// fork follows child when its parent is followed.
func (f *Follower) fork(parent, parentTGID, child int) {
	if f.hasKnown(parent, parentTGID) {
		f.Add(child)
		if cg, ok := f.known[parentTGID]; ok {
			f.known[child] = cg
		}
	}
}

// prep is a probe event on an opcode's preparation: the SQE's arguments.
type prep struct {
	op  abi.Opcode
	req kernel.Request
}

// Tracker turns trace lines, in order, into Events of the followed
// processes. It pairs each request's preparation probe with the
// submission (or failure) that follows on the same thread: one thread
// prepares and submits one SQE at a time.
type Tracker struct {
	follow  *Follower
	group   string
	pending map[int]prep
	filter  map[int]bool
	// Lost counts events the kernel dropped because the buffer was full.
	Lost int
	// Bad counts lines that did not parse.
	Bad int
	// Missing counts requests whose argument probe was not seen.
	Missing int
}

// NewTracker returns a Tracker for the probes of group (Session.Group),
// reporting the processes f follows.
func NewTracker(group string, f *Follower) *Tracker {
	return &Tracker{follow: f, group: group, pending: map[int]prep{}, filter: map[int]bool{}}
}

// Follower returns the tracker's follower, to add processes to it.
func (t *Tracker) Follower() *Follower { return t.follow }

// Feed reads one line of trace output. It returns an Event when the line
// completes one for a followed process.
func (t *Tracker) Feed(s string) (Event, bool) {
	if n, ok := LostEvents(s); ok {
		t.Lost += n
		return Event{}, false
	}
	if strings.TrimSpace(s) == "" {
		return Event{}, false
	}
	l, err := ParseLine(s)
	if err != nil {
		t.Bad++
		return Event{}, false
	}
	if l.Event == "sched_process_exec" {
		if m := execRE.FindStringSubmatch(l.Rest); m != nil {
			pid, _ := strconv.Atoi(m[1])
			t.follow.exec(pid)
		} else {
			t.Bad++
		}
		return Event{}, false
	}
	if l.Event == "cgroup_attach_task" {
		if m := attachRE.FindStringSubmatch(l.Rest); m != nil {
			pid, _ := strconv.Atoi(m[2])
			t.follow.attach(pid, m[1])
		} else {
			t.Bad++
		}
		return Event{}, false
	}
	if l.Event == "sched_process_fork" {
		if parent, child, err := parseFork(l.Rest); err == nil {
			t.follow.fork(parent, l.TGID, child)
		} else {
			t.Bad++
		}
		return Event{}, false
	}
	f := Fields(l.Rest)
	// Probe events are kept per thread for the event that follows, before
	// asking whether the thread is followed: that is asked once, there.
	switch l.Event {
	case probeSocket, probeOpenat, probeOpenat2, probeConnect:
		p, err := parsePrep(l.Event, f)
		if err != nil {
			t.Bad++
			return Event{}, false
		}
		if len(t.pending) > maxPending {
			clear(t.pending)
		}
		t.pending[l.PID] = p
		return Event{}, false
	case probeFilter:
		if len(t.filter) > maxPending {
			clear(t.filter)
		}
		t.filter[l.PID] = f["ret"] == "-13"
		return Event{}, false
	}
	if !t.follow.Has(l.PID, l.TGID) {
		delete(t.pending, l.PID)
		delete(t.filter, l.PID)
		return Event{}, false
	}
	ev := Event{Time: l.Time, PID: l.PID, TGID: l.TGID, Comm: l.Comm, Cgroup: t.follow.Cgroup(l.TGID)}
	switch l.Event {
	case "io_uring_submit_req":
		ev.Kind = Submitted
		ev.SQThread = f["sq_thread"] == "1"
	case "io_uring_req_failed":
		if f["error"] != "-13" {
			delete(t.pending, l.PID)
			delete(t.filter, l.PID)
			return Event{}, false
		}
		ev.Kind = Denied
		ev.SQThread = strings.HasPrefix(l.Comm, "iou-sqp-")
		ev.Filter = t.filter[l.PID]
	case "sys_io_uring_register":
		op, err1 := num(f["opcode"])
		fd, err2 := num(f["fd"])
		if err1 != nil || err2 != nil {
			t.Bad++
			return Event{}, false
		}
		ev.Kind = Registered
		ev.RegisterOp = uint32(op) &^ registerUseRegisteredRing
		ev.RegisterFD = int(int32(fd))
		return ev, true
	default:
		return Event{}, false
	}
	delete(t.filter, l.PID)
	op, ok := lookupOp(f["opcode"])
	if !ok {
		t.Bad++
		delete(t.pending, l.PID)
		return Event{}, false
	}
	flags, err1 := num(f["flags"])
	ud, err2 := num(f["user_data"])
	if err1 != nil || err2 != nil {
		t.Bad++
		delete(t.pending, l.PID)
		return Event{}, false
	}
	ev.Req.Op = op
	ev.Req.UserData = ud
	// For Submitted, flags are req->flags, whose low bits are the IOSQE_*
	// bits filters see; for Denied they are the SQE's own flags.
	ev.Req.Flags = uint8(flags) & abi.IOSQEValidFlagsMask
	ev.Args = !hasArgs(op)
	// A ring's restrictions refuse a request before its preparation, so
	// no probe event belongs to it.
	p, ok := t.pending[l.PID]
	delete(t.pending, l.PID)
	if ok && (ev.Kind == Submitted || ev.Filter) {
		if p.op == op {
			ev.Req.Socket, ev.Req.Open, ev.Req.Connect = p.req.Socket, p.req.Open, p.req.Connect
			ev.Args = true
		}
	}
	if !ev.Args && (ev.Kind == Submitted || ev.Filter) {
		t.Missing++
	}
	return ev, true
}

// execRE reads sched_process_exec's text: "filename=/bin/x pid=5 old_pid=5".
var execRE = regexp.MustCompile(`pid=(\d+) old_pid=\d+$`)

// attachRE reads cgroup_attach_task's text:
// "dst_root=0 dst_id=5 dst_level=1 dst_path=/x.scope pid=90 comm=sh".
var attachRE = regexp.MustCompile(`dst_path=(.*) pid=(\d+) comm=`)

// maxPending bounds the per-thread state a long watch keeps for threads
// that are not followed (their probe events are kept until their next
// event, which may never come).
const maxPending = 1 << 16

// registerUseRegisteredRing is IORING_REGISTER_USE_REGISTERED_RING, a flag
// in io_uring_register's opcode argument.
const registerUseRegisteredRing = 1 << 31

// hasArgs reports whether ringfence probes op's preparation.
func hasArgs(op abi.Opcode) bool {
	switch op {
	case abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect:
		return true
	}
	return false
}

// lookupOp reads an opcode as io_uring's tracepoints print it: by name on
// kernels that print op_str, else by number.
func lookupOp(s string) (abi.Opcode, bool) {
	if v, err := num(s); err == nil {
		if v >= abi.OpLast {
			return 0, false
		}
		return abi.Opcode(v), true
	}
	info, ok := abi.LookupOpcode(s)
	return info.Op, ok
}

// parsePrep reads a preparation probe's fields (see probeDefs).
func parsePrep(event string, f map[string]string) (prep, error) {
	get := func(k string) (uint64, error) {
		v, ok := f[k]
		if !ok {
			return 0, fmt.Errorf("%s: no %s", event, k)
		}
		n, err := num(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %s=%q: %v", event, k, v, err)
		}
		return n, nil
	}
	var p prep
	var vals []uint64
	var keys []string
	switch event {
	case probeSocket:
		p.op, keys = abi.OpSocket, []string{"fd", "off", "len"}
	case probeOpenat:
		p.op, keys = abi.OpOpenat, []string{"fd", "len", "flags"}
	case probeOpenat2:
		p.op, keys = abi.OpOpenat2, []string{"fd", "len", "flags", "mode", "resolve"}
	case probeConnect:
		p.op, keys = abi.OpConnect, []string{"fd", "addrlen", "sa0", "sa1", "sa2", "sa3"}
	}
	for _, k := range keys {
		v, err := get(k)
		if err != nil {
			return p, err
		}
		vals = append(vals, v)
	}
	p.req.Op = p.op
	switch p.op {
	case abi.OpSocket:
		p.req.Socket = kernel.SocketArgs{Domain: uint32(vals[0]), Type: uint32(vals[1]), Protocol: uint32(vals[2])}
	case abi.OpOpenat:
		p.req.Open = kernel.OpenArgs{Dir: int32(vals[0]), Mode: uint64(uint32(vals[1])), Flags: uint64(uint32(vals[2]))}
	case abi.OpOpenat2:
		p.req.Open = kernel.OpenArgs{Dir: int32(vals[0]), HowSize: uint32(vals[1]), Flags: vals[2], Mode: vals[3], Resolve: vals[4]}
	case abi.OpConnect:
		// The kernel reads at most 128 bytes (sizeof(struct
		// sockaddr_storage)); the probe reads the first 28, which hold
		// every field filters see. The rest stays zero.
		addr := make([]byte, 128)
		binary.NativeEndian.PutUint64(addr[0:], vals[2])
		binary.NativeEndian.PutUint64(addr[8:], vals[3])
		binary.NativeEndian.PutUint64(addr[16:], vals[4])
		binary.NativeEndian.PutUint32(addr[24:], uint32(vals[5]))
		n := uint32(vals[1])
		p.req.Connect = kernel.ConnectArgs{FD: int32(vals[0]), Addr: addr, AddrLen: n}
	}
	return p, nil
}
