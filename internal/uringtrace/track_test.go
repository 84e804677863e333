package uringtrace

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		want Line
		bad  bool
	}{
		{in: "      iou-sqp-98-102     (     98) [000] .l...     2.757459: io_uring_submit_req: ring 0, req 0, user_data 0x65",
			want: Line{Comm: "iou-sqp-98", PID: 102, TGID: 98, Time: 2.757459, Event: "io_uring_submit_req", Rest: "ring 0, req 0, user_data 0x65"}},
		{in: "my prog-1-2-17 (    15) [001] d..1.  10.000001: rf_socket: (io_socket_prep+0x4/0x80) fd=2 off=0x1 len=0",
			want: Line{Comm: "my prog-1-2", PID: 17, TGID: 15, CPU: 1, Time: 10.000001, Event: "rf_socket", Rest: "(io_socket_prep+0x4/0x80) fd=2 off=0x1 len=0"}},
		{in: "   t-5 (-------) [000] ..... 1.5: sched_process_fork: comm=t pid=5 child_comm=t child_pid=6",
			want: Line{Comm: "t", PID: 5, Time: 1.5, Event: "sched_process_fork", Rest: "comm=t pid=5 child_comm=t child_pid=6"}},
		{in: "  t0.test-98 ( 98) [000] ..... 2.75: sys_io_uring_register(fd: 3, opcode: 8, arg: 0x2c, nr_args: 0x100)",
			want: Line{Comm: "t0.test", PID: 98, TGID: 98, Time: 2.75, Event: "sys_io_uring_register", Rest: "sys_io_uring_register(fd: 3, opcode: 8, arg: 0x2c, nr_args: 0x100)"}},
		{in: "CPU:1 [LOST 12 EVENTS]", bad: true},
		{in: "", bad: true},
		{in: "t-1 (1) [0] . 1.0 no colon", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseLine(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLine(%q)\n got %+v, %v\nwant %+v", tt.in, got, err, tt.want)
		}
	}
	if n, ok := LostEvents("CPU:1 [LOST 12 EVENTS]"); !ok || n != 12 {
		t.Errorf("LostEvents = %d, %v", n, ok)
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"(io_connect_prep+0x4/0xa0) fd=-1 addrlen=16 sa0=0x100007f901f0002",
			map[string]string{"at": "io_connect_prep+0x4/0xa0", "fd": "-1", "addrlen": "16", "sa0": "0x100007f901f0002"}},
		{"(io_submit_sqes+0x599/0x770 <- __io_uring_run_bpf_filters) ret=-13",
			map[string]string{"at": "io_submit_sqes+0x599/0x770 <- __io_uring_run_bpf_filters", "ret": "-13"}},
		{"ring 00000000457142e0, req 00000000aec88783, user_data 0x5, opcode CONNECT, flags 0x400000, sq_thread 0",
			map[string]string{"ring": "00000000457142e0", "req": "00000000aec88783", "user_data": "0x5", "opcode": "CONNECT", "flags": "0x400000", "sq_thread": "0"}},
		{"ring 0, req 0, user_data 0x12d, opcode SOCKET, flags 0x0, prio=0, off=2, error=-13",
			map[string]string{"ring": "0", "req": "0", "user_data": "0x12d", "opcode": "SOCKET", "flags": "0x0", "prio": "0", "off": "2", "error": "-13"}},
		{"sys_io_uring_register(fd: 3, opcode: 8, arg: 0x2c, nr_args: 0x100)",
			map[string]string{"call": "sys_io_uring_register", "fd": "3", "opcode": "8", "arg": "0x2c", "nr_args": "0x100"}},
	}
	for _, tt := range tests {
		got := Fields(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("Fields(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("Fields(%q)[%q] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

// readTrace returns the lines of a trace the VM test printed on a real
// kernel (testdata/trace-RELEASE.txt): the record session's helper
// (plain and SQPOLL rings, a child) and then the denial session's.
func readTrace(t testing.TB, release string) []string {
	t.Helper()
	f, err := os.Open("testdata/trace-" + release + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// Real traces and their helpers' pids.
var traces = []struct {
	release      string
	version      abi.Version
	record, deny int // the record and denial helpers
	outsider     int // the test process, not followed
}{
	{"7.1.13", abi.Version{Major: 7, Minor: 1}, 98, 108, 92},
	{"7.3.4", abi.Version{Major: 7, Minor: 3}, 98, 109, 93},
}

func feed(tr *Tracker, lines []string) []Event {
	var evs []Event
	for _, l := range lines {
		if ev, ok := tr.Feed(l); ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

func TestTrackerRecord(t *testing.T) {
	for _, tc := range traces {
		t.Run(tc.release, func(t *testing.T) {
			tr := NewTracker("ringfence_1", Follow(tc.record))
			evs := feed(tr, readTrace(t, tc.release))
			if tr.Bad != 0 || tr.Lost != 0 || tr.Missing != 0 {
				t.Errorf("bad %d lost %d missing %d", tr.Bad, tr.Lost, tr.Missing)
			}
			byUD := map[uint64]Event{}
			var regs []uint32
			for _, e := range evs {
				switch e.Kind {
				case Submitted:
					if _, dup := byUD[e.Req.UserData]; dup {
						t.Errorf("user_data %d twice", e.Req.UserData)
					}
					byUD[e.Req.UserData] = e
				case Registered:
					regs = append(regs, e.RegisterOp)
				default:
					t.Errorf("unexpected %s event %+v", e.Kind, e)
				}
			}
			if len(regs) != 1 || regs[0] != abi.RegisterProbe {
				t.Errorf("register ops %v, want [8]", regs)
			}
			for _, add := range []uint64{0, 100} {
				for _, q := range workload() {
					q.UserData += add
					e, ok := byUD[q.UserData]
					if !ok {
						t.Errorf("user_data %d (%s) not recorded", q.UserData, q.Op)
						continue
					}
					delete(byUD, q.UserData)
					if e.SQThread != (add == 100) || e.TGID != tc.record {
						t.Errorf("user_data %d: SQThread %v tgid %d", q.UserData, e.SQThread, e.TGID)
					}
					want, _ := q.Ctx(tc.version)
					got, _ := e.Req.Ctx(tc.version)
					if got != want {
						t.Errorf("user_data %d: context %+v, want %+v", q.UserData, got, want)
					}
				}
			}
			if e, ok := byUD[200]; !ok || e.Req.Socket != (kernel.SocketArgs{Domain: 1, Type: 1}) || e.TGID == tc.record {
				t.Errorf("the child's request: %+v, %v", e, ok)
			}
			delete(byUD, 200)
			if len(byUD) != 0 {
				t.Errorf("unexpected requests (an outsider's?): %+v", byUD)
			}
		})
	}
}

func TestTrackerDenials(t *testing.T) {
	for _, tc := range traces {
		t.Run(tc.release, func(t *testing.T) {
			tr := NewTracker("ringfence_1", Follow(tc.deny))
			evs := feed(tr, readTrace(t, tc.release))
			if len(evs) != 2 {
				t.Fatalf("%d events, want 2: %+v", len(evs), evs)
			}
			f, r := evs[0], evs[1]
			if f.Kind != Denied || !f.Filter || !f.Args || f.Req.Socket != (kernel.SocketArgs{Domain: 2, Type: 2, Protocol: 17}) || f.Req.UserData != 301 {
				t.Errorf("filter denial %+v", f)
			}
			if r.Kind != Denied || r.Filter || r.Req.UserData != 311 || r.Req.Socket != (kernel.SocketArgs{}) {
				t.Errorf("restriction denial %+v (restrictions refuse before preparation: no arguments)", r)
			}
		})
	}
}

func TestTrackerFollowAll(t *testing.T) {
	lines := readTrace(t, "7.3.4")
	tr := NewTracker("ringfence_1", FollowAll())
	outsider := 0
	for _, e := range feed(tr, lines) {
		if e.TGID == traces[1].outsider {
			outsider++
		}
	}
	if outsider != 1 {
		t.Errorf("FollowAll: %d events of the test process, want its one NOP", outsider)
	}
}

func TestTrackerMissingProbe(t *testing.T) {
	var lines []string
	for _, l := range readTrace(t, "7.3.4") {
		if strings.Contains(l, "rf_openat2:") {
			continue // as if the buffer had lost it
		}
		lines = append(lines, l)
	}
	tr := NewTracker("ringfence_1", Follow(98))
	var missing []Event
	for _, e := range feed(tr, lines) {
		if e.Kind == Submitted && !e.Args {
			missing = append(missing, e)
		}
	}
	if tr.Missing != 2 || len(missing) != 2 || missing[0].Req.Op != abi.OpOpenat2 || missing[0].Req.Open != (kernel.OpenArgs{}) {
		t.Errorf("Missing = %d, events %+v; want the two OPENAT2 without arguments", tr.Missing, missing)
	}
}

func FuzzFeed(f *testing.F) {
	for _, tc := range traces {
		for _, l := range readTrace(f, tc.release) {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr := NewTracker("g", FollowAll())
		tr.Feed(s)
		tr.Feed(s)
		Fields(s)
	})
}
