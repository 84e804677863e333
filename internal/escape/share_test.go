package escape

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/kernel"
)

// TestAttachWQ: a thread holds a ring made before it was confined (a
// runtime that calls ApplyToTask in a process that already used io_uring)
// and, confined, makes a ring with IORING_SETUP_ATTACH_WQ on it: the new
// ring shares the old ring's async backend and, with SQPOLL, its poll
// thread, which the unconfined thread made. The new ring must still be
// filtered. Unconfined, the same attached rings run the requests (the
// attack is real), and the shared poll thread is the only one.
func TestAttachWQ(t *testing.T) {
	needFilters(t)
	for _, mode := range []string{"sqpoll", "plain"} {
		free := self(t, nil, "role", "attach-wq", mode, "unconfined")
		wantEscaped(t, mode+" unconfined", free)
		r := self(t, nil, "role", "attach-wq", mode, "confined")
		wantHeld(t, mode+" confined", r)
		t.Logf("%s confined:\n%s", mode, r.stdout)
		for _, res := range []result{free, r} {
			if !strings.Contains(res.stdout, "attached\n") || !strings.Contains(res.stdout, "first ring NOP 0\n") {
				t.Errorf("%s: want the ring attached and the first (unfiltered) ring's NOP to run:\n%v", mode, res)
			}
			if mode == "sqpoll" && !strings.Contains(res.stdout, "sqpoll threads 1\n") {
				t.Errorf("%s: want the attached ring to share the first ring's poll thread:\n%v", mode, res)
			}
		}
	}
}

// TestAttachWQInherited: a launcher hands "ringfence run" a ring; the
// program makes a ring with IORING_SETUP_ATTACH_WQ on that descriptor.
// run closes (or refuses) inherited rings first, so there is nothing to
// attach to. Without run the same program attaches and its requests run.
func TestAttachWQInherited(t *testing.T) {
	needFilters(t)
	free := self(t, nil, "role", "attach-wq-launch")
	wantEscaped(t, "unconfined", free)
	if !strings.Contains(free.stdout, "attached to descriptor") {
		t.Errorf("unconfined: want the ring attached:\n%v", free)
	}
	args := append([]string{"role", "attach-wq-launch", "ringfence", "run"}, runFlags()...)
	r := self(t, nil, append(args, "--profile", "deny-all", "--")...)
	wantHeld(t, "--ring-fds=close", r)
	if strings.Contains(r.stdout, "attached") {
		t.Errorf("--ring-fds=close: a ring attached to the inherited descriptor:\n%v", r)
	}
	args = append([]string{"role", "attach-wq-launch", "ringfence", "run", "--ring-fds=refuse"}, runFlags()...)
	r = self(t, nil, append(args, "--profile", "deny-all", "--")...)
	if r.code != 125 || r.stdout != "" {
		t.Errorf("--ring-fds=refuse: want exit 125 and the program not run:\n%v", r)
	}
}

// TestProcFDReopen: a confined program opens the /proc/PID/fd link of an
// unconfined process's ring (a sibling's, and its own parent's), to get a
// ring no filter covers. The kernel refuses to open an io_uring through
// the link (ENXIO) and an O_PATH descriptor is no io_uring; a pipe of the
// same process does reopen, so the program did reach its descriptors.
// Unconfined the answer is the same: nobody can reopen a ring.
func TestProcFDReopen(t *testing.T) {
	needFilters(t)
	pid, ringFD, pipeFD := startVictim(t)
	ring, err := kernel.NewRing(kernel.Params{Entries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	rp, wp, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	defer wp.Close()
	targets := map[string][]string{
		"sibling": {pid, strconv.Itoa(ringFD), strconv.Itoa(pipeFD)},
		"parent":  {"parent", strconv.Itoa(ring.FD()), strconv.Itoa(int(rp.Fd()))},
	}
	for name, args := range targets {
		for _, r := range []result{
			self(t, nil, append([]string{"role", "proc-reopen"}, args...)...),
			attack(t, []string{"--profile", "deny-all"}, "proc-reopen", args...),
		} {
			wantHeld(t, name, r)
			t.Logf("%s:\n%s", name, r.stdout)
			if !strings.Contains(r.stdout, "reopened the pipe") || !strings.Contains(r.stdout, "open O_RDWR: no such device or address") {
				t.Errorf("%s: want the pipe reopened and the ring refused with ENXIO:\n%v", name, r)
			}
		}
	}
}

// setuidCopy copies this test binary to a directory everyone may enter,
// owned by root with the setuid bit.
func setuidCopy(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the escape suite expects to run as root in the VM")
	}
	dir, err := os.MkdirTemp("", "escape-setuid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "suid")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetuidUnprivileged: a confined program drops to user nobody and
// executes a setuid-root program. no_new_privs keeps it unprivileged
// (unconfined it becomes root: the attack is real), and as nobody it
// cannot register a looser restriction set, clear no_new_privs or run
// requests deny-all refuses.
func TestSetuidUnprivileged(t *testing.T) {
	needFilters(t)
	suid := setuidCopy(t)
	free := self(t, nil, "role", "drop-exec", suid)
	wantEscaped(t, "unconfined", free)
	if !strings.Contains(free.stdout, "uid 65534 euid 0\n") {
		t.Errorf("unconfined: want the setuid program to run as root:\n%v", free)
	}
	r := attack(t, []string{"--profile", "deny-all"}, "drop-exec", suid)
	wantHeld(t, "deny-all", r)
	if !strings.Contains(r.stdout, "uid 65534 euid 65534\n") {
		t.Errorf("deny-all: want the setuid program to run as nobody:\n%v", r)
	}
}

// TestForgedTaskState: a launcher installs a seccomp filter that answers
// ringfence's ring-less task registrations with a success that never
// reached the kernel, and the "already restricted?" probe
// (kernel.TaskRestricted) with EPERM: without ringfence's checks by
// behaviour, the program ran unfiltered under deny-all on every kernel
// (the role forge-works shows the lie). run must refuse to start the
// program. Faking only the restriction set leaves the filters and the
// companion seccomp filter, which hold; faking the companion filter's
// installation too (the register section then ran unchecked) or
// no_new_privs must be refused.
func TestForgedTaskState(t *testing.T) {
	needFilters(t)
	wantEscaped(t, "the forging filter lies", self(t, nil, "role", "forge-works"))
	forged := func(mode, role string) result {
		args := append([]string{"role", "forge-launch", mode, role}, runFlags()...)
		return self(t, nil, append(args, "--profile", "deny-all")...)
	}
	for _, c := range []struct{ mode, role, why string }{
		{"all", "requests", "did not reach the kernel"},
		{"restrictions+seccomp", "sync-cancel", "installation did not reach the kernel"},
		{"restrictions+nnp", "requests", "no_new_privs is not set"},
	} {
		r := forged(c.mode, c.role)
		if r.code != 125 || strings.Contains(r.stdout, "ESCAPED") || !strings.Contains(r.stderr, c.why) {
			t.Errorf("run under a seccomp filter faking %s: want exit 125 saying %q:\n%v", c.mode, c.why, r)
		}
	}
	wantHeld(t, "forged restriction set, requests", forged("restrictions", "requests"))
	wantHeld(t, "forged restriction set, REGISTER_SYNC_CANCEL", forged("restrictions", "sync-cancel"))
}
