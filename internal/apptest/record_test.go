package apptest

// fio, a real io_uring program, through the learn-then-enforce workflow:
// record it (its SQPOLL thread submits), run it under the recorded policy
// with the denial log (it works, nothing logged), run it doing one thing
// more (writes as well as reads: the writes are denied and logged, naming
// the rule).

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
