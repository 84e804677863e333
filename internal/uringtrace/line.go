package uringtrace

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Line is one event as the tracefs text output (trace_pipe with the
// record-tgid option) prints it:
//
//	iou-sqp-95-98      (     93) [000] .l...     2.500972: io_uring_submit_req: ring 0000000091314764, req ...
type Line struct {
	Comm  string  // the thread's command name (may contain spaces and dashes)
	PID   int     // the thread id
	TGID  int     // the thread group (process) id; 0 when the kernel did not know it
	CPU   int     // the CPU that recorded the event
	Time  float64 // seconds since boot (the trace clock)
	Event string  // the event name, e.g. "io_uring_submit_req", a kprobe's name, or "sys_io_uring_register" for a syscall event
	Rest  string  // the event's own text, after "event: "
}

// lineRE matches the common prefix. The command name is everything up to
// the last "-PID" before the "(TGID)" column, so names with dashes and
// spaces parse.
var lineRE = regexp.MustCompile(`^\s*(.*)-(\d+)\s+\(\s*([0-9]+|-+)\)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+):\s+([A-Za-z0-9_]+)(: ?|\()(.*)$`)

// ParseLine parses one line of trace_pipe output written with the
// record-tgid option. It fails on lines of any other shape (the buffer's
// "CPU:N [LOST M EVENTS]" notes are reported by LostEvents).
func ParseLine(s string) (Line, error) {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return Line{}, fmt.Errorf("trace line %q: not \"COMM-PID (TGID) [CPU] FLAGS TIME: EVENT: ...\"", s)
	}
	l := Line{Comm: m[1], Event: m[6], Rest: m[8]}
	if m[7] == "(" {
		// A syscall event prints as a call: "sys_io_uring_register(fd: 6, ...)".
		l.Rest = m[6] + "(" + m[8]
	}
	var err error
	if l.PID, err = strconv.Atoi(m[2]); err != nil {
		return Line{}, fmt.Errorf("trace line %q: pid: %v", s, err)
	}
	if !strings.HasPrefix(m[3], "-") {
		if l.TGID, err = strconv.Atoi(m[3]); err != nil {
			return Line{}, fmt.Errorf("trace line %q: tgid: %v", s, err)
		}
	}
	if l.CPU, err = strconv.Atoi(m[4]); err != nil {
		return Line{}, fmt.Errorf("trace line %q: cpu: %v", s, err)
	}
	if l.Time, err = strconv.ParseFloat(m[5], 64); err != nil {
		return Line{}, fmt.Errorf("trace line %q: time: %v", s, err)
	}
	return l, nil
}

var lostRE = regexp.MustCompile(`^CPU:(\d+) \[LOST (\d+) EVENTS\]$`)

// LostEvents recognises the note trace_pipe prints when the per-CPU buffer
// overflowed: "CPU:1 [LOST 120 EVENTS]". It returns how many were lost.
func LostEvents(s string) (int, bool) {
	m := lostRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[2])
	return n, err == nil
}

// Fields splits an event's text into named values. It understands the
// three shapes the events ringfence uses print:
//
//	kprobe events:   "(io_socket_prep+0x4/0x80) req=0xff.. fd=2 off=0x801"
//	io_uring events: "ring 0000.., req 0000.., user_data 0xb, opcode SOCKET, flags 0x0"
//	                 "..., prio=0, off=2, error=-13" (mixed)
//	syscall events:  "sys_io_uring_register(fd: 6, opcode: 0x25, arg: 0x.., nr_args: 1)"
//
// The first word of a kprobe's text (its location) is returned under "at".
func Fields(rest string) map[string]string {
	out := map[string]string{}
	s := strings.TrimSpace(rest)
	if strings.HasPrefix(s, "(") {
		// kprobe: "(where) k=v k=v"
		end := strings.Index(s, ")")
		if end < 0 {
			return out
		}
		out["at"] = s[1:end]
		for _, kv := range strings.Fields(s[end+1:]) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = v
			}
		}
		return out
	}
	if i := strings.Index(s, "("); i > 0 && strings.HasSuffix(s, ")") && !strings.Contains(s[:i], " ") {
		// syscall: "name(k: v, k: v)"
		out["call"] = s[:i]
		s = s[i+1 : len(s)-1]
	}
	for _, item := range strings.Split(s, ", ") {
		item = strings.TrimSpace(item)
		var k, v string
		var ok bool
		if k, v, ok = strings.Cut(item, ": "); !ok {
			if k, v, ok = strings.Cut(item, "="); !ok {
				k, v, ok = strings.Cut(item, " ")
			}
		}
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// forkRE reads sched_process_fork's text; command names may hold spaces.
var forkRE = regexp.MustCompile(`^comm=.* pid=(\d+) child_comm=.* child_pid=(\d+)$`)

// parseFork returns the parent and child thread ids of a
// sched_process_fork event.
func parseFork(rest string) (parent, child int, err error) {
	m := forkRE.FindStringSubmatch(strings.TrimSpace(rest))
	if m == nil {
		return 0, 0, fmt.Errorf("sched_process_fork %q: no pid= and child_pid=", rest)
	}
	parent, _ = strconv.Atoi(m[1])
	child, _ = strconv.Atoi(m[2])
	return parent, child, nil
}

// num parses a number as tracefs prints it: decimal, negative decimal or
// 0x hex.
func num(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 0, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 0, 64)
}
