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
