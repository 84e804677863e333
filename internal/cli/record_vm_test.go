package cli

// Kernel tests of "ringfence record", "run --log-denials" and "monitor",
// inside the VM harness: record a workload, run it under the recorded
// policy (it works, nothing is logged), run a variant that does one thing
// more (that request is denied and the log names it and the rule), merge
// two runs. The workload is this test binary's "submit" helper.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/denylog"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// submitResult is one line the submit helper prints.
type submitResult struct {
	Spec string `json:"spec"`
	Res  int32  `json:"res"`
}

// parseSpec reads a request spec of the submit helper:
// "socket,FAMILY,TYPE,PROTO", "openat,PATH,FLAGS,MODE",
// "openat2,PATH,FLAGS,MODE,RESOLVE", "connect,ADDR,PORT", "nop", "read".
func parseSpec(spec string, ud uint64) (kernel.Request, error) {
	f := strings.Split(spec, ",")
	n := func(i int) uint64 {
		v, _ := strconv.ParseUint(f[i], 0, 64)
		return v
	}
	q := kernel.Request{UserData: ud}
	switch {
	case f[0] == "socket" && len(f) == 4:
		q.Op, q.Socket = abi.OpSocket, kernel.SocketArgs{Domain: uint32(n(1)), Type: uint32(n(2)), Protocol: uint32(n(3))}
	case f[0] == "openat" && len(f) == 4:
		q.Op, q.Open = abi.OpOpenat, kernel.OpenArgs{Dir: -100, Path: f[1], Flags: n(2), Mode: n(3)}
	case f[0] == "openat2" && len(f) == 5:
		q.Op, q.Open = abi.OpOpenat2, kernel.OpenArgs{Dir: -100, Path: f[1], Flags: n(2), Mode: n(3), Resolve: n(4)}
	case f[0] == "connect" && len(f) == 3:
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return q, err
		}
		q.Op = abi.OpConnect
		if a.Is4() {
			q.Connect = kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet4(uint16(n(2)), a.As4()), AddrLen: 16}
		} else {
			q.Connect = kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet6(uint16(n(2)), a.As16()), AddrLen: 28}
		}
	case spec == "nop":
		q.Op = abi.OpNop
	default:
		return q, fmt.Errorf("bad spec %q", spec)
	}
	return q, nil
}

// submitHelper is "submit [sqpoll:]SPEC... [probe]": each spec on a plain
// ring, or on a SQPOLL ring with the sqpoll: prefix; "probe" calls
// io_uring_register(IORING_REGISTER_PROBE). It prints one JSON line per
// request with its result and closes descriptors it got.
func submitHelper(args []string) int { return submitHelperWith(args, nil) }

// denySocket registers a filter that denies every SOCKET on a ring.
func denySocket(r *kernel.Ring) error {
	return r.RegisterFilter(abi.OpSocket, []cbpf.Instruction{{Op: 0x06, K: 0}}, 0, 0)
}

// submitHelperWith is submitHelper with setup run on each ring it makes.
func submitHelperWith(args []string, setup func(*kernel.Ring) error) int {
	rings := map[bool]*kernel.Ring{}
	ring := func(sq bool) (*kernel.Ring, error) {
		if r := rings[sq]; r != nil {
			return r, nil
		}
		p := kernel.Params{}
		if sq {
			p.Flags, p.SQThreadIdle = kernel.SetupSQPoll, 10
		}
		r, err := kernel.NewRing(p)
		if err == nil && setup != nil {
			err = setup(r)
		}
		rings[sq] = r
		return r, err
	}
	for i, spec := range args {
		sq := false
		s := spec
		if rest, ok := strings.CutPrefix(spec, "sqpoll:"); ok {
			sq, s = true, rest
		}
		r, err := ring(sq)
		if err != nil {
			fmt.Fprintln(os.Stderr, "submit:", err)
			return 1
		}
		if s == "probe" {
			_, err := r.ProbeOpcodes()
			res := int32(0)
			if err != nil {
				res = -1
			}
			b, _ := json.Marshal(submitResult{Spec: spec, Res: res})
			fmt.Printf("%s\n", b)
			continue
		}
		q, err := parseSpec(s, uint64(i+1))
		if err != nil {
			fmt.Fprintln(os.Stderr, "submit:", err)
			return 1
		}
		c, err := r.Do(q.SQE())
		if err != nil {
			fmt.Fprintln(os.Stderr, "submit:", err)
			return 1
		}
		if c.Res >= 0 && q.Op != abi.OpNop {
			kernel.CloseFD(int(c.Res))
		}
		b, _ := json.Marshal(submitResult{Spec: spec, Res: c.Res})
		fmt.Printf("%s\n", b)
	}
	for _, r := range rings {
		r.Close()
	}
	return 0
}

// submitResults parses the helper's output.
func submitResults(out string) (map[string]int32, error) {
	res := map[string]int32{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r submitResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
		res[r.Spec] = r.Res
	}
	return res, nil
}

// needRunKernel skips unless "ringfence run" works here: Linux 7.1 or
// later (7.0 drops task filters at execve, so run refuses; tested by the
// run tests), inside the VM.
func needRunKernel(t *testing.T) abi.Version {
	t.Helper()
	vmtest.Require(t)
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if kernel.Supported() != nil || k.Less(abi.Version{Major: 7, Minor: 1}) {
		t.Skipf("ringfence run needs Linux 7.1+ with filters (this is %v); its refusal is tested by the run tests", k)
	}
	return k
}

// waitDenialLogs waits until no "__denial-log" process is left: each
// exits after draining its trace once the program it watched is gone.
func waitDenialLogs(t *testing.T) { vmtest.WaitGone(t, "__denial-log", 20*time.Second) }

// runSubmit runs "ringfence ARGS... -- <submit helper> SPECS..." and
// returns the helper's results.
func runSubmit(t *testing.T, args []string, specs ...string) map[string]int32 {
	t.Helper()
	argv := append(append(append([]string{}, args...), "--"), helperArgv("submit", specs...)...)
	c := helperCmd("main", argv...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("ringfence %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	res, err := submitResults(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(specs) {
		t.Fatalf("%d results for %d requests:\n%s\n%s", len(res), len(specs), out.String(), errb.String())
	}
	return res
}

// readLog reads a JSON-lines denial log.
func readLog(t *testing.T, path string) []denylog.Entry {
	t.Helper()
	log, err := denylog.ReadFile(path) // the log creates its file when it starts
	if err != nil {
		t.Fatal(err)
	}
	return log
}

const logPolicy = `version: 1
default: deny
rules:
  - name: ring
    ops: [NOP]
    action: allow
  - name: tcp
    ops: [SOCKET]
    action: allow
    when:
      socket.family: AF_INET
      socket.type: SOCK_STREAM
`

func TestRunLogDenials(t *testing.T) {
	needRunKernel(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pol, []byte(logPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, "denials.jsonl")
	res := runSubmit(t, []string{"run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json"},
		"nop", "socket,2,1,6", "socket,2,2,17", "sqpoll:socket,10,2,17", "sqpoll:nop")
	waitDenialLogs(t)
	for spec, want := range map[string]bool{"nop": true, "socket,2,1,6": true, "socket,2,2,17": false, "sqpoll:socket,10,2,17": false, "sqpoll:nop": true} {
		if got := res[spec] != -13; got != want {
			t.Errorf("%s: result %d, want allowed=%v", spec, res[spec], want)
		}
	}
	log := readLog(t, logf)
	if len(log) != 2 {
		t.Fatalf("%d log entries, want the 2 denials: %+v", len(log), log)
	}
	for i, want := range []struct {
		req    string
		sqpoll bool
	}{
		{"op=SOCKET socket.family=AF_INET socket.type=SOCK_DGRAM socket.protocol=IPPROTO_UDP", false},
		{"op=SOCKET socket.family=AF_INET6 socket.type=SOCK_DGRAM socket.protocol=IPPROTO_UDP", true},
	} {
		e := log[i]
		if !strings.HasSuffix(e.Request, strings.TrimPrefix(want.req, "op=SOCKET")) || !strings.HasPrefix(e.Request, "op=SOCKET ") || e.SQPoll != want.sqpoll || e.By != "filter" ||
			e.Rule != "the default (deny)" || e.Policy != pol || e.Op != "SOCKET" || e.PID == 0 || e.Comm == "" {
			t.Errorf("entry %d: %+v; want request %q (sqpoll %v) denied by the default of %s", i, e, want.req, want.sqpoll, pol)
		}
	}
}

// recordSubmit runs "ringfence record ARGS... -- <submit helper> SPECS..."
// and returns the helper's results and record's standard error.
func recordSubmit(t *testing.T, args []string, specs ...string) (map[string]int32, string) {
	t.Helper()
	argv := append(append(append([]string{"record"}, args...), "--"), helperArgv("submit", specs...)...)
	c := helperCmd("main", argv...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("ringfence record: %v\n%s", err, errb.String())
	}
	res, err := submitResults(out.String())
	if err != nil {
		t.Fatal(err)
	}
	return res, errb.String()
}

func TestRecordThenEnforce(t *testing.T) {
	k := needRunKernel(t)
	dir := t.TempDir()
	created := filepath.Join(dir, "created")
	workload := []string{
		"nop", "socket,2,1,6", "openat,/proc/self/status,0o2000000,0", "connect,127.0.0.1,9", "probe",
		"sqpoll:socket,10,2,17", "sqpoll:openat2," + created + ",0o101,0o600,0", "sqpoll:nop",
	}
	pol := filepath.Join(dir, "recorded.yaml")
	recorded, msg := recordSubmit(t, []string{"-o", pol}, workload...)
	t.Logf("record said:\n%s", msg)
	data, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded policy:\n%s", data)
	p, err := policy.Parse(data, pol)
	if err != nil {
		t.Fatalf("the recorded policy does not parse: %v", err)
	}
	if p.Default != policy.Deny || p.Register == nil || len(p.Register.Allow) != 1 || p.Register.Allow[0] != abi.RegOpProbe {
		t.Errorf("default %v, register %+v; want deny and exactly REGISTER_PROBE", p.Default, p.Register)
	}
	// What only the SQPOLL thread submitted is in the policy.
	sq := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 10, Type: 2, Protocol: 17}}
	if d := p.Decide(sq); !d.Allow {
		t.Errorf("the SQPOLL thread's AF_INET6 UDP socket is denied by %s", p.Describe(d))
	}

	// The same workload under the recorded policy: same results, no
	// denial logged.
	logf := filepath.Join(dir, "same.jsonl")
	os.Remove(created)
	res := runSubmit(t, []string{"run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json"}, workload...)
	waitDenialLogs(t)
	for _, s := range workload {
		if res[s] != recorded[s] {
			t.Errorf("%s: %d under the recorded policy, %d when recorded", s, res[s], recorded[s])
		}
	}
	if log := readLog(t, logf); len(log) != 0 {
		t.Errorf("denials logged for the recorded workload: %+v", log)
	}

	// One thing more: that request is denied, and only it is logged.
	more := []string{"socket,2,2,17"}
	if !k.Less(abi.Version{Major: 7, Minor: 2}) {
		more = append(more, "connect,127.0.0.1,10") // a port never seen (7.2+ filters see it)
	}
	for _, extra := range more {
		logf := filepath.Join(dir, "more.jsonl")
		os.Remove(logf)
		os.Remove(created)
		res := runSubmit(t, []string{"run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json"}, append(workload, extra)...)
		waitDenialLogs(t)
		if res[extra] != -13 {
			t.Errorf("%s under the recorded policy: %d, want -13 (EACCES)", extra, res[extra])
		}
		for _, s := range workload {
			if res[s] != recorded[s] {
				t.Errorf("with %s: %s: %d, want %d", extra, s, res[s], recorded[s])
			}
		}
		log := readLog(t, logf)
		op := strings.ToUpper(strings.Split(extra, ",")[0])
		if len(log) != 1 || log[0].Op != op || log[0].Rule != "the default (deny)" || log[0].By != "filter" {
			t.Errorf("with %s: log %+v; want one %s entry denied by the default", extra, log, op)
		} else {
			t.Logf("logged: %+v", log[0])
		}
	}
}

func TestRecordMerge(t *testing.T) {
	needRunKernel(t)
	dir := t.TempDir()
	a, b := []string{"nop", "socket,2,1,6"}, []string{"nop", "socket,1,1,0", "sqpoll:socket,1,2,0"}
	pa, pab := filepath.Join(dir, "a.json"), filepath.Join(dir, "ab.yaml") // JSON and YAML both
	recordSubmit(t, []string{"-o", pa}, a...)
	recordSubmit(t, []string{"-o", pab, "--merge", pa}, b...)
	// a's policy denies b's Unix sockets; the merged one allows both runs.
	res := runSubmit(t, []string{"run", "--policy", pa}, b...)
	if res["socket,1,1,0"] != -13 || res["sqpoll:socket,1,2,0"] != -13 {
		t.Errorf("a's policy allowed b's sockets: %v", res)
	}
	for _, w := range [][]string{a, b} {
		res := runSubmit(t, []string{"run", "--policy", pab}, w...)
		for s, r := range res {
			if r == -13 {
				t.Errorf("merged policy denied %s", s)
			}
		}
	}
	// And denies what neither did.
	if res := runSubmit(t, []string{"run", "--policy", pab}, "socket,2,2,17"); res["socket,2,2,17"] != -13 {
		t.Errorf("merged policy allowed a UDP socket neither run made: %v", res)
	}
}

// TestMonitorCgroup watches a cgroup, by path and by the container id in
// its name: a process that joins it and has a request denied is logged,
// with the cgroup; the same denial outside the cgroup is not.
func TestMonitorCgroup(t *testing.T) {
	vmtest.Require(t)
	if kernel.Supported() != nil {
		t.Skip("needs io_uring filters to deny anything")
	}
	id := strings.Repeat("5e", 32)
	name := "ringfence-test-" + id + ".scope"
	cg := "/sys/fs/cgroup/" + name
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	for _, by := range [][]string{{"--cgroup", "/" + name}, {"--container", id[:12]}} {
		t.Run(by[0], func(t *testing.T) {
			logf := filepath.Join(t.TempDir(), "monitor.jsonl")
			mon := helperCmd("main", append([]string{"monitor", "--format", "json", "-o", logf}, by...)...)
			var monErr strings.Builder
			mon.Stderr = &monErr
			if err := mon.Start(); err != nil {
				t.Fatal(err)
			}
			// The monitor is ready when its tracefs instance has its events on.
			ready := fmt.Sprintf("/sys/kernel/tracing/instances/ringfence-%d/events/io_uring/io_uring_req_failed/enable", mon.Process.Pid)
			for end := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if b, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(b)) == "1" {
					break
				}
				if time.Now().After(end) {
					mon.Process.Kill()
					mon.Wait()
					t.Fatalf("monitor not ready after 20 s: %s", monErr.String())
				}
			}
			for _, dir := range []string{cg, ""} {
				c := helperCmd("cgroup-submit", dir, "socket,2,1,6", "sqpoll:socket,10,2,0", "nop")
				if out, err := c.CombinedOutput(); err != nil {
					t.Fatalf("helper in %q: %v\n%s", dir, err, out)
				}
			}
			// Let the trace catch up, then stop the monitor as a person would.
			time.Sleep(500 * time.Millisecond)
			mon.Process.Signal(syscall.SIGINT)
			if err := mon.Wait(); err != nil {
				t.Fatalf("monitor: %v\n%s", err, monErr.String())
			}
			if strings.Contains(monErr.String(), "cgroup_attach_task") {
				t.Errorf("the monitor cannot see processes join the cgroup: %s", monErr.String())
			}
			log := readLog(t, logf)
			if len(log) != 2 {
				t.Fatalf("%d entries, want the 2 denials inside the cgroup: %+v", len(log), log)
			}
			for i, e := range log {
				if e.Op != "SOCKET" || e.Cgroup != "/"+name || e.Container != id || e.SQPoll != (i == 1) || e.By != "filter" || e.Rule != "" {
					t.Errorf("entry %d: %+v; want a SOCKET in /%s, container %s (no policy given: no rule)", i, e, name, id)
				}
			}
		})
	}
}
