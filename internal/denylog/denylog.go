// Package denylog writes the io_uring denial log: one line per request a
// filter (or a ring's restrictions) refused, saying who submitted it, what
// it asked for, and which rule or default of the policy refused it. The
// kernel itself logs nothing: a denied request only completes with
// -EACCES, which programs easily mistake for a file permission error or a
// disabled io_uring.
//
// A denial is told apart from other -EACCES results by where it happens:
// filters and ring restrictions refuse a request at submission, which the
// io_uring_req_failed tracepoint reports with error -13, while a request
// that ran and failed (an open of an unreadable file) completes later and
// never reaches that tracepoint. A return probe on the function that runs
// the filters tells a filter's denial from the ring's restrictions (see
// package uringtrace).
package denylog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/uringtrace"
	"github.com/ringfence/ringfence/policy"
)

// Entry is one denied request.
type Entry struct {
	Time   time.Time `json:"time"`
	PID    int       `json:"pid"` // the process (thread group)
	TID    int       `json:"tid"` // the submitting thread (an iou-sqp thread for SQPOLL rings)
	Comm   string    `json:"comm"`
	SQPoll bool      `json:"sqpoll,omitempty"`
	// Cgroup is the process's cgroup (v2 path) when it could be read;
	// Container is the container id found in it, if any.
	Cgroup    string `json:"cgroup,omitempty"`
	Container string `json:"container_id,omitempty"`
	// Op and Request say what was asked: the request as the filters saw
	// it (policy.ParseRequest reads Request back).
	Op      string `json:"op"`
	Request string `json:"request"`
	// By names what refused it: "filter" (an io_uring BPF filter) or
	// "restrictions" (the ring's IORING_REGISTER_RESTRICTIONS).
	By string `json:"denied_by"`
	// Rule is who in the policy decided, when a policy was given: a rule
	// ("rule 4 (\"tcp\") at line 30") or "the default (deny)". Policy is
	// the policy's file or profile name. Note explains a denial the policy
	// does not account for.
	Rule   string `json:"rule,omitempty"`
	Policy string `json:"policy,omitempty"`
	Note   string `json:"note,omitempty"`
	// Incomplete is set when the request's arguments were not seen (the
	// trace buffer lost them): Request then lacks them.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Attributor explains denials with a policy.
type Attributor struct {
	// Policy is the policy the program runs under; nil when unknown (a
	// process someone else confined): entries then name no rule.
	Policy *policy.Policy
	// Name is how entries name the policy (its file or profile).
	Name string
	// Kernel is the running kernel, for the filter context's prediction.
	Kernel abi.Version
	// Now gives the time of an entry (time.Now when nil).
	Now func() time.Time
	// Proc is the /proc directory to read cgroups from ("/proc" when "").
	Proc string
}

// Entry turns a Denied event into a log entry.
func (a *Attributor) Entry(ev uringtrace.Event) Entry {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	r := ev.PolicyRequest(a.Kernel)
	e := Entry{
		Time: now().UTC(), PID: ev.TGID, TID: ev.PID, Comm: ev.Comm, SQPoll: ev.SQThread,
		Op: ev.Req.Op.String(), Request: r.String(), By: "filter", Policy: a.Name,
		Incomplete: !ev.Args && ev.Filter,
	}
	if e.PID == 0 {
		e.PID = ev.PID
	}
	if !ev.Args {
		// The arguments were never seen (restrictions refuse before the
		// preparation; or the buffer lost the probe): say only what is
		// known rather than zeros.
		e.Request = "op=" + ev.Req.Op.String()
		if r.UserData != 0 {
			e.Request += fmt.Sprintf(" user_data=%#x", r.UserData)
		}
		if r.SQEFlags != 0 {
			f, _ := policy.LookupField("sqe_flags")
			e.Request += " sqe_flags=" + policy.FormatValue(f, uint64(r.SQEFlags))
		}
	}
	if ev.Cgroup != "" {
		e.Cgroup, e.Container = CgroupV2("0::" + ev.Cgroup)
	} else {
		e.Cgroup, e.Container = a.cgroup(e.PID)
	}
	if !ev.Filter {
		e.By = "restrictions"
		e.Note = "the ring's own restrictions (IORING_REGISTER_RESTRICTIONS, set by the program) refused it, not a filter"
		return e
	}
	if a.Policy == nil {
		return e
	}
	d := a.Policy.Decide(r)
	e.Rule = a.Policy.Describe(d)
	if d.Allow {
		e.Note = "this policy allows it (" + e.Rule + "): another io_uring filter on the task or ring refused it"
		e.Rule = ""
	}
	if e.Incomplete {
		e.Note = "the request's arguments were lost from the trace buffer; the rule is decided on zeros"
	}
	return e
}

// containerRE finds a container id (64 hex digits) in a cgroup path, as
// runc, crun, containerd and Podman name their scopes.
var containerRE = regexp.MustCompile(`[0-9a-f]{64}`)

// cgroup returns pid's cgroup v2 path and the container id in it, or ""
// when the process is gone or has no unified cgroup.
func (a *Attributor) cgroup(pid int) (string, string) {
	proc := a.Proc
	if proc == "" {
		proc = "/proc"
	}
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", proc, pid))
	if err != nil {
		return "", ""
	}
	return CgroupV2(string(b))
}

// CgroupV2 returns the unified (v2) cgroup path of a /proc/PID/cgroup
// file's text, and the last container id (64 hex digits) in it.
func CgroupV2(text string) (path, container string) {
	path, _ = uringtrace.CgroupPath(text)
	if ids := containerRE.FindAllString(path, -1); len(ids) > 0 {
		container = ids[len(ids)-1]
	}
	return path, container
}

// Text writes e as one line for people:
//
//	2026-11-30T19:50:01.123Z denied pid 812 (postgres) [cgroup /system.slice/pg.service] SOCKET: op=SOCKET socket.family=AF_INET ...: rule 4 ("tcp") at line 30 of web.yaml
func (e Entry) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s denied pid %d", e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.PID)
	if e.TID != e.PID {
		fmt.Fprintf(&b, " tid %d", e.TID)
	}
	fmt.Fprintf(&b, " (%s)", e.Comm)
	if e.SQPoll {
		b.WriteString(" via SQPOLL")
	}
	switch {
	case e.Container != "":
		fmt.Fprintf(&b, " [container %.12s]", e.Container)
	case e.Cgroup != "":
		fmt.Fprintf(&b, " [cgroup %s]", e.Cgroup)
	}
	fmt.Fprintf(&b, ": %s", e.Request)
	switch {
	case e.Rule != "" && e.Policy != "":
		fmt.Fprintf(&b, ": %s of %s", e.Rule, e.Policy)
	case e.Rule != "":
		fmt.Fprintf(&b, ": %s", e.Rule)
	case e.By == "filter" && e.Note == "":
		b.WriteString(": an io_uring filter")
	}
	if e.Note != "" {
		fmt.Fprintf(&b, " (%s)", e.Note)
	}
	return b.String()
}

// Writer writes entries as text or JSON lines.
type Writer struct {
	W    io.Writer
	JSON bool
}

// Write writes one entry and a newline.
func (w Writer) Write(e Entry) error {
	if w.JSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = w.W.Write(append(b, '\n'))
		return err
	}
	_, err := io.WriteString(w.W, e.Text()+"\n")
	return err
}

// ReadJSON reads a JSON-lines denial log (Writer with JSON) back into its
// entries. Blank lines are skipped; a line that is not an entry is an
// error naming its line number.
func ReadJSON(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return out, fmt.Errorf("denial log line %d: %v", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ReadFile reads the JSON-lines denial log in file path (see ReadJSON).
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJSON(f)
}
