package apptest

// Real io_uring programs through the learn-then-enforce workflow. fio:
// record it (its SQPOLL thread submits), run it under the recorded policy
// with the denial log (it works, nothing logged), run it doing one thing
// more (writes as well as reads: the writes are denied and logged, naming
// the rule). PostgreSQL 18: record the server, run it under its policy.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/denylog"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// fioArgs is a short fio job on the io_uring engine with a SQPOLL thread.
func fioArgs(dir, rw string) []string {
	return []string{"fio", "--name=job", "--filename=" + filepath.Join(dir, "fio.dat"), "--size=2m", "--io_size=1m",
		"--bs=4k", "--rw=" + rw, "--ioengine=io_uring", "--iodepth=4", "--sqthread_poll=1", "--thread=0"}
}

func ringfence(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ringfence", args...).CombinedOutput()
	return string(out), err
}

// waitLogs waits until every "ringfence __denial-log" process has exited.
func waitLogs(t *testing.T) { vmtest.WaitGone(t, "__denial-log", 20*time.Second) }

func readDenials(t *testing.T, path string) []denylog.Entry {
	t.Helper()
	log, err := denylog.ReadFile(path) // the log creates its file when it starts
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func TestFioRecordThenEnforce(t *testing.T) {
	vmtest.Require(t)
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if kernel.Supported() != nil || k.Less(abi.Version{Major: 7, Minor: 1}) {
		t.Skipf("ringfence run needs Linux 7.1+ with filters (this is %v)", k)
	}
	dir := t.TempDir()
	pol := filepath.Join(dir, "fio.yaml")
	out, err := ringfence(t, append([]string{"record", "-o", pol, "--"}, fioArgs(dir, "randread")...)...)
	if err != nil {
		t.Fatalf("record: %v\n%s", err, out)
	}
	t.Logf("record:\n%s", out)
	data, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fio's recorded policy:\n%s", data)
	p, err := policy.Parse(data, pol)
	if err != nil {
		t.Fatal(err)
	}
	// fio reads with READ or, without probing, READV.
	if !p.Decide(policy.Request{Op: abi.OpRead}).Allow && !p.Decide(policy.Request{Op: abi.OpReadv}).Allow {
		t.Errorf("fio's reads (submitted by its SQPOLL thread) are not in the policy")
	}
	if !strings.Contains(string(data), "SQPOLL") {
		t.Errorf("the policy's comments do not say a SQPOLL thread submitted")
	}
	if p.Decide(policy.Request{Op: abi.OpWrite}).Allow || p.Decide(policy.Request{Op: abi.OpWritev}).Allow {
		t.Errorf("a read-only fio job's policy allows WRITE")
	}

	logf := filepath.Join(dir, "same.jsonl")
	out, err = ringfence(t, append([]string{"run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json", "--"}, fioArgs(dir, "randread")...)...)
	waitLogs(t)
	if err != nil {
		t.Fatalf("fio under its recorded policy failed: %v\n%s", err, out)
	}
	if log := readDenials(t, logf); len(log) != 0 {
		t.Errorf("denials logged for the recorded job: %+v", log)
	}

	logf = filepath.Join(dir, "more.jsonl")
	out, err = ringfence(t, append([]string{"run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json", "--"}, fioArgs(dir, "randrw")...)...)
	waitLogs(t)
	if err == nil {
		t.Errorf("fio writing under a read-only policy succeeded:\n%s", out)
	}
	log := readDenials(t, logf)
	if len(log) == 0 {
		t.Fatalf("no denial logged for fio's writes; fio said:\n%s", out)
	}
	for _, e := range log {
		if (e.Op != "WRITE" && e.Op != "WRITEV") || e.Rule != "the default (deny)" || e.By != "filter" || !strings.HasPrefix(e.Comm, "iou-sqp") {
			t.Errorf("entry %+v: want WRITE from fio's SQPOLL thread denied by the default", e)
		}
	}
	t.Logf("%d denials logged, the first: %+v", len(log), log[0])
}

// TestPostgreSQLRecordThenEnforce records PostgreSQL 18 with
// io_method=io_uring (the server in the foreground under record; pgbench
// and a scan larger than shared_buffers as its workload), then runs the
// same server and workload under the recorded policy with the denial log:
// every query works and nothing is logged.
func TestPostgreSQLRecordThenEnforce(t *testing.T) {
	vmtest.Require(t)
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if kernel.Supported() != nil || k.Less(abi.Version{Major: 7, Minor: 3}) {
		// About 80 s per kernel (initdb, pgbench, two server runs): on
		// the newest kernel only; fio and the cli tests cover 7.1 and 7.2.
		t.Skipf("runs on Linux 7.3 and later only, for its cost (this is %v)", k)
	}
	base, err := os.MkdirTemp("/tmp", "pgrec-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if out, err := exec.Command("chown", "postgres:postgres", base).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	pg := &postgres{dir: filepath.Join(base, "data"), sock: base}
	mustRun(t, 3*time.Minute, nil, asPostgres(pgBin+"initdb", "-D", pg.dir, "-A", "trust", "--no-sync",
		"-c", "io_method=io_uring", "-c", "shared_buffers=1MB", "-c", "max_connections=10",
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+base)...)
	server := asPostgres(pgBin+"postgres", "-D", pg.dir)
	workload := func(t *testing.T, first bool) {
		t.Helper()
		for end := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if runCmd(t, 10*time.Second, nil, pg.psql("select 1")...).exit == 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the server did not accept connections in 90 s")
			}
		}
		if first {
			mustRun(t, 3*time.Minute, nil, pgBin+"pgbench", "-h", pg.sock, "-U", "postgres", "-i", "-s", "1", "postgres")
			pg.query(t, "create table big as select g, repeat('x', 500) as pad from generate_series(1, 20000) g")
		}
		out := mustRun(t, 3*time.Minute, nil, pgBin+"pgbench", "-h", pg.sock, "-U", "postgres", "-t", "100", "postgres")
		if !strings.Contains(out, "number of failed transactions: 0 ") {
			t.Fatalf("pgbench:\n%s", out)
		}
		for i := 0; i < 3; i++ {
			if got := pg.query(t, "select count(*) from big"); got != "20000" {
				t.Fatalf("scan: %q", got)
			}
		}
	}
	stop := func(t *testing.T, c *exec.Cmd, what string, out *strings.Builder) {
		t.Helper()
		mustRun(t, 2*time.Minute, nil, asPostgres(pgBin+"pg_ctl", "-D", pg.dir, "-m", "fast", "-w", "stop")...)
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v\n%s", what, err, tail(out.String(), 30))
			}
		case <-time.After(2 * time.Minute):
			c.Process.Kill()
			t.Fatalf("%s did not end after the server stopped:\n%s", what, tail(out.String(), 30))
		}
	}
	start := func(argv ...string) (*exec.Cmd, *strings.Builder) {
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = "/tmp"
		out := &strings.Builder{}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		return c, out
	}

	pol := filepath.Join(base, "postgres.yaml")
	rec, recOut := start(append([]string{"ringfence", "record", "-o", pol, "--"}, server...)...)
	workload(t, true)
	stop(t, rec, "ringfence record", recOut)
	data, err := os.ReadFile(pol)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(recOut.String(), 20))
	}
	t.Logf("record: %s\nPostgreSQL's recorded policy:\n%s", tail(recOut.String(), 5), data)
	p, err := policy.Parse(data, pol)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Decide(policy.Request{Op: abi.OpReadv}).Allow && !p.Decide(policy.Request{Op: abi.OpRead}).Allow {
		t.Errorf("the server's io_uring reads are not in its policy")
	}

	logf := filepath.Join(base, "denials.jsonl")
	run, runOut := start(append([]string{"ringfence", "run", "--policy", pol, "--log-denials=" + logf, "--log-format", "json", "--"}, server...)...)
	workload(t, false)
	stop(t, run, "postgres under its recorded policy", runOut)
	waitLogs(t)
	if log := readDenials(t, logf); len(log) != 0 {
		t.Errorf("denials logged for the recorded workload: %+v", log)
	}
	// The server runs in the foreground and logs to its standard error,
	// which runOut holds.
	if strings.Contains(runOut.String(), "Permission denied") {
		t.Errorf("the server reported a denied request:\n%s", tail(runOut.String(), 20))
	}
}
