package uringtrace

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeProc writes /proc/PID/stat and /proc/PID/cgroup files.
func fakeProc(t *testing.T, procs map[int]struct {
	ppid   int
	cgroup string
}) string {
	dir := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(dir, fmt.Sprint(pid))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (a) b) S %d 1 1 0\n", pid, p.ppid)), 0o644)
		os.WriteFile(filepath.Join(d, "cgroup"), []byte("0::"+p.cgroup+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "self"), nil, 0o644)
	return dir
}

func TestFollowTree(t *testing.T) {
	proc := fakeProc(t, map[int]struct {
		ppid   int
		cgroup string
	}{1: {0, "/"}, 10: {1, "/"}, 11: {10, "/"}, 12: {11, "/"}, 20: {1, "/"}})
	f := FollowTree(proc, 10)
	for pid, want := range map[int]bool{10: true, 11: true, 12: true, 20: false, 1: false} {
		if got := f.Has(pid, pid); got != want {
			t.Errorf("Has(%d) = %v, want %v", pid, got, want)
		}
	}
	f.fork(12, 12, 30)
	f.fork(20, 20, 31)
	if !f.Has(30, 30) || f.Has(31, 31) {
		t.Error("a child of a followed process must be followed, of another not")
	}
	if !f.Has(99, 11) {
		t.Error("a thread (an iou-sqp thread) of a followed process must be followed")
	}
}

func TestFollowCgroup(t *testing.T) {
	proc := fakeProc(t, map[int]struct {
		ppid   int
		cgroup string
	}{5: {1, "/system.slice/db.service"}, 6: {1, "/system.slice/db.service/sub"}, 7: {1, "/system.slice/db.service2"}, 8: {1, "/user.slice"}})
	f := FollowCgroup(proc, "/system.slice/db.service/")
	for pid, want := range map[int]bool{5: true, 6: true, 7: false, 8: false, 9: false} {
		if got := f.Has(pid, pid); got != want {
			t.Errorf("Has(%d) = %v, want %v", pid, got, want)
		}
	}
	// A process that joins the cgroup later is followed from then on.
	os.WriteFile(filepath.Join(proc, "8", "cgroup"), []byte("0::/system.slice/db.service\n"), 0o644)
	if !f.Has(8, 8) {
		t.Error("process 8 joined the cgroup but is not followed")
	}
	f.fork(5, 5, 50)
	if !f.Has(50, 50) {
		t.Error("a child of a process in the cgroup is not followed")
	}
	// The cgroup is known after the process is gone.
	os.RemoveAll(filepath.Join(proc, "6"))
	if got := f.Cgroup(6); got != "/system.slice/db.service/sub" {
		t.Errorf("Cgroup(6) = %q after exit", got)
	}
	if got := f.Cgroup(50); got != "/system.slice/db.service" {
		t.Errorf("Cgroup(50) = %q, want the parent's", got)
	}
}

func TestFollowContainer(t *testing.T) {
	id := "3f2a9c1d0b7e" + "55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa"
	proc := fakeProc(t, map[int]struct {
		ppid   int
		cgroup string
	}{5: {1, "/system.slice/docker-" + id + ".scope"}, 6: {1, "/system.slice/docker-" + "4" + id[1:] + ".scope"}, 7: {1, "/user.slice"}})
	f := FollowContainer(proc, id[:12])
	for pid, want := range map[int]bool{5: true, 6: false, 7: false} {
		if got := f.Has(pid, pid); got != want {
			t.Errorf("Has(%d) = %v, want %v", pid, got, want)
		}
	}
}

func TestFollowFromExec(t *testing.T) {
	line := func(comm string, pid, tgid int, ev, rest string) string {
		return fmt.Sprintf("%16s-%-7d (%7d) [000] ..... 1.000000: %s: %s", comm, pid, tgid, ev, rest)
	}
	denied := func(pid int) string {
		return line("x", pid, pid, "io_uring_req_failed", "ring 0, req 0, user_data 0x1, opcode NOP, flags 0x0, prio=0, off=0, addr=0, len=0, rw_flags=0x0, buf_index=0, personality=0, file_index=0, pad=0x0, addr3=0, error=-13")
	}
	tr := NewTracker("g", FollowFromExec(10))
	var got []int
	for _, l := range []string{
		denied(10), // ringfence's own check, before the exec
		line("ringfence", 10, 10, "sched_process_fork", "comm=ringfence pid=10 child_comm=ringfence child_pid=11"),
		denied(11), // its probe child
		line("ringfence", 10, 10, "sched_process_exec", "filename=/usr/bin/ringfence pid=10 old_pid=10"),
		denied(10), // the program
		line("prog", 10, 10, "sched_process_fork", "comm=prog pid=10 child_comm=prog child_pid=12"),
		denied(12), // the program's child
		denied(11), // the probe child still is not followed
	} {
		if ev, ok := tr.Feed(l); ok {
			got = append(got, ev.PID)
		}
	}
	if fmt.Sprint(got) != "[10 12]" || tr.Bad != 0 {
		t.Errorf("denials of %v (bad %d), want [10 12]: the program and its child, from its exec on", got, tr.Bad)
	}
}

func TestFollowCgroupAttach(t *testing.T) {
	proc := fakeProc(t, map[int]struct {
		ppid   int
		cgroup string
	}{5: {1, "/c.scope"}, 6: {1, "/"}})
	f := FollowCgroup(proc, "/c.scope")
	// Process 5 was in the cgroup when the watch began; it is followed
	// after it exits too.
	os.RemoveAll(filepath.Join(proc, "5"))
	if !f.Has(5, 5) || f.Cgroup(5) != "/c.scope" {
		t.Error("a process in the cgroup at the start is not followed after it exits")
	}
	tr := NewTracker("g", f)
	for _, l := range []string{
		"              sh-6       (      6) [000] ..... 1.000000: cgroup_attach_task: dst_root=0 dst_id=5 dst_level=1 dst_path=/c.scope pid=6 comm=sh",
		"              sh-7       (      7) [000] ..... 1.000000: cgroup_attach_task: dst_root=0 dst_id=5 dst_level=1 dst_path=/other pid=7 comm=sh",
	} {
		tr.Feed(l)
	}
	os.RemoveAll(filepath.Join(proc, "6"))
	if !f.Has(6, 6) || f.Cgroup(6) != "/c.scope" || f.Has(7, 7) || tr.Bad != 0 {
		t.Errorf("after attach events: 6 followed %v (%q), 7 followed %v, bad %d; want 6 only", f.Has(6, 6), f.Cgroup(6), f.Has(7, 7), tr.Bad)
	}
}
