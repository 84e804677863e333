package uringtrace

// Tests against real kernels, inside the VM harness: the session records
// the requests a program really submits (its children and SQPOLL threads
// included) and the denials filters and ring restrictions really make.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
)

const helperEnv = "RINGFENCE_UTRACE_HELPER"

// TestMain lets the test binary act as the traced program.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		if err := helper(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// workload are the requests the "requests" helper submits, by user_data.
func workload() []kernel.Request {
	return []kernel.Request{
		{Op: abi.OpSocket, UserData: 1, Socket: kernel.SocketArgs{Domain: 2, Type: 1 | 0o4000, Protocol: 6}},
		{Op: abi.OpSocket, UserData: 2, Socket: kernel.SocketArgs{Domain: 10, Type: 2, Protocol: 17}},
		{Op: abi.OpOpenat, UserData: 3, Open: kernel.OpenArgs{Dir: -100, Path: "/proc/self/status", Flags: 0o2000000}},
		{Op: abi.OpOpenat2, UserData: 4, Open: kernel.OpenArgs{Dir: -100, Path: "/tmp/utrace-created", Flags: 0o1101, Mode: 0o640, Resolve: 0x4}},
		{Op: abi.OpConnect, UserData: 5, Connect: kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet4(8080, [4]byte{127, 0, 0, 1}), AddrLen: 16}},
		{Op: abi.OpConnect, UserData: 6, Connect: kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet6(443, [16]byte{15: 1}), AddrLen: 28}},
		{Op: abi.OpNop, UserData: 7, Flags: abi.IOSQEAsync},
	}
}

func helper(role string, args []string) error {
	switch role {
	case "requests":
		// The workload on a plain ring (user_data as is) and on a SQPOLL
		// ring (user_data + 100), then a child doing one SOCKET (200).
		for _, sq := range []bool{false, true} {
			p := kernel.Params{}
			var add uint64
			if sq {
				p.Flags, p.SQThreadIdle, add = kernel.SetupSQPoll, 10, 100
			}
			ring, err := kernel.NewRing(p)
			if err != nil {
				return err
			}
			for _, q := range workload() {
				q.UserData += add
				c, err := ring.Do(q.SQE())
				if err != nil {
					return err
				}
				if c.Res >= 0 && q.Op != abi.OpNop {
					kernel.CloseFD(int(c.Res))
				}
			}
			if !sq {
				if _, err := ring.ProbeOpcodes(); err != nil {
					return err
				}
			}
			ring.Close()
		}
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), helperEnv+"=one-socket")
		c.Stderr = os.Stderr
		return c.Run()
	case "open-and-hang":
		if _, err := Open(Record); err != nil {
			return err
		}
		fmt.Println("open")
		select {}
	case "one-socket":
		ring, err := kernel.NewRing(kernel.Params{})
		if err != nil {
			return err
		}
		defer ring.Close()
		c, err := ring.Do(kernel.Request{Op: abi.OpSocket, UserData: 200, Socket: kernel.SocketArgs{Domain: 1, Type: 1}}.SQE())
		if err == nil && c.Res >= 0 {
			kernel.CloseFD(int(c.Res))
		}
		return err
	case "denied":
		// A ring whose filter refuses SOCKET, and a ring whose
		// restrictions allow only NOP; SOCKET on each, NOP on each.
		ring, err := kernel.NewRing(kernel.Params{})
		if err != nil {
			return err
		}
		if err := ring.RegisterFilter(abi.OpSocket, []cbpf.Instruction{{Op: 0x06, K: 0}}, 0, 0); err != nil {
			return err
		}
		restricted, err := kernel.NewRing(kernel.Params{Flags: abi.SetupRDisabled})
		if err != nil {
			return err
		}
		if err := restricted.RegisterRestrictions([]abi.Restriction{{Op: abi.RestrictSQEOp, Value: uint8(abi.OpNop)}}); err != nil {
			return err
		}
		if err := restricted.Enable(); err != nil {
			return err
		}
		for i, r := range []*kernel.Ring{ring, restricted} {
			base := uint64(300 + 10*i)
			c, err := r.Do(kernel.Request{Op: abi.OpSocket, UserData: base + 1, Socket: kernel.SocketArgs{Domain: 2, Type: 2, Protocol: 17}}.SQE())
			if err != nil {
				return err
			}
			if c.Res != -13 {
				return fmt.Errorf("socket on ring %d: %d, want -13", i, c.Res)
			}
			if _, err := r.Do(kernel.Request{Op: abi.OpNop, UserData: base + 2}.SQE()); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// traceHelper runs the helper role under a session of mode m, following
// only the helper, and returns what the tracker made of it.
func traceHelper(t *testing.T, m Mode, role string) ([]Event, *Tracker) {
	t.Helper()
	vmtest.Require(t)
	s, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	for _, w := range s.Warnings {
		t.Log("warning:", w)
	}
	// Requests of this process must not be recorded: only the helper is
	// followed.
	ring, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ring.Do(kernel.Request{Op: abi.OpNop, UserData: 999}.SQE())
	ring.Close()
	if err != nil {
		t.Fatalf("the NOP of a process not followed: %v", err)
	}
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), helperEnv+"="+role)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(s.Group(), Follow(c.Process.Pid))
	if err := c.Wait(); err != nil {
		t.Fatalf("helper %s: %v", role, err)
	}
	var evs []Event
	stop := make(chan struct{})
	close(stop)
	done := make(chan error, 1)
	go func() { done <- s.Run(tr, stop, func(ev Event) { evs = append(evs, ev) }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no end marker in 30 s")
	}
	return evs, tr
}

func TestRecordSession(t *testing.T) {
	evs, tr := traceHelper(t, Record, "requests")
	if tr.Lost != 0 || tr.Bad != 0 || tr.Missing != 0 {
		t.Errorf("lost %d, bad %d, missing arguments %d; want none", tr.Lost, tr.Bad, tr.Missing)
	}
	byUD := map[uint64][]Event{}
	var registers []uint32
	for _, e := range evs {
		switch e.Kind {
		case Submitted:
			byUD[e.Req.UserData] = append(byUD[e.Req.UserData], e)
		case Registered:
			registers = append(registers, e.RegisterOp)
		}
	}
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	want := workload()
	for _, add := range []uint64{0, 100} {
		for _, q := range want {
			q.UserData += add
			got := byUD[q.UserData]
			if len(got) != 1 {
				t.Errorf("user_data %d (%s): %d events, want 1", q.UserData, q.Op, len(got))
				continue
			}
			e := got[0]
			if e.SQThread != (add == 100) {
				t.Errorf("user_data %d: SQThread = %v", q.UserData, e.SQThread)
			}
			// The request as recorded must give the filter context the
			// kernel would see for the request as made.
			wantCtx, _ := q.Ctx(k)
			gotCtx, _ := e.Req.Ctx(k)
			if wantCtx != gotCtx {
				t.Errorf("user_data %d (%s): recorded context\n%+v\nwant\n%+v\n(event %+v)", q.UserData, q.Op, gotCtx, wantCtx, e)
			}
			if e.TGID == 0 || e.TGID == os.Getpid() {
				t.Errorf("user_data %d: tgid %d", q.UserData, e.TGID)
			}
		}
	}
	if got := byUD[200]; len(got) != 1 || got[0].Req.Socket != (kernel.SocketArgs{Domain: 1, Type: 1}) {
		t.Errorf("the helper's child's SOCKET: %+v, want one AF_UNIX stream", got)
	}
	if len(byUD[999]) != 0 {
		t.Errorf("a request of a process not followed was recorded: %+v", byUD[999])
	}
	// The helper's one register call: IORING_REGISTER_PROBE (8).
	if len(registers) != 1 || registers[0] != abi.RegisterProbe {
		t.Errorf("register operations %v, want [%d] (IORING_REGISTER_PROBE)", registers, abi.RegisterProbe)
	}
	t.Logf("%d events", len(evs))
}

func TestDenialSession(t *testing.T) {
	vmtest.Require(t)
	if err := kernel.Supported(); err != nil {
		// No filters (6.19): nothing to deny, and no function to probe.
		s, err := Open(Denials)
		if err == nil {
			s.Close()
			t.Fatal("a denial session opened on a kernel without io_uring filters")
		}
		if !errors.Is(err, ErrCannotTrace) || !strings.Contains(err.Error(), "__io_uring_run_bpf_filters") {
			t.Errorf("error %q: want ErrCannotTrace naming __io_uring_run_bpf_filters", err)
		}
		return
	}
	evs, tr := traceHelper(t, Denials, "denied")
	if tr.Lost != 0 || tr.Bad != 0 {
		t.Errorf("lost %d, bad %d", tr.Lost, tr.Bad)
	}
	var denied []Event
	for _, e := range evs {
		if e.Kind == Denied {
			denied = append(denied, e)
		} else {
			t.Errorf("denial session reported %s event %+v", e.Kind, e)
		}
	}
	if len(denied) != 2 {
		t.Fatalf("%d denials, want 2: %+v", len(denied), denied)
	}
	f, r := denied[0], denied[1]
	if f.Req.UserData != 301 || !f.Filter || !f.Args || f.Req.Socket != (kernel.SocketArgs{Domain: 2, Type: 2, Protocol: 17}) {
		t.Errorf("filter denial: %+v; want user_data 301, Filter, the SOCKET's arguments", f)
	}
	if r.Req.UserData != 311 || r.Filter || r.Req.Op != abi.OpSocket {
		t.Errorf("restriction denial: %+v; want user_data 311, not Filter", r)
	}
	if f.Comm == "" || f.TGID == 0 {
		t.Errorf("denial without command or process: %+v", f)
	}
}

// TestStaleSessionRemoved: a session whose process died without Close
// (SIGKILL) is removed by the next Open.
func TestStaleSessionRemoved(t *testing.T) {
	vmtest.Require(t)
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), helperEnv+"=open-and-hang")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "open\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	inst := fmt.Sprintf("/sys/kernel/tracing/instances/ringfence-%d", c.Process.Pid)
	if _, err := os.Stat(inst); err != nil {
		t.Fatalf("the helper's instance: %v", err)
	}
	c.Process.Kill()
	c.Wait()
	s, err := Open(Record)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(inst); err == nil {
		t.Errorf("%s is still there", inst)
	}
	if b, _ := os.ReadFile("/sys/kernel/tracing/kprobe_events"); strings.Contains(string(b), fmt.Sprintf("ringfence_%d/", c.Process.Pid)) {
		t.Errorf("the killed session's probes are still there:\n%s", b)
	}
	if b, _ := os.ReadFile("/sys/kernel/tracing/kprobe_events"); strings.Contains(string(b), "ringfence_") {
		t.Errorf("probes left after Close:\n%s", b)
	}
}
