package ringfence

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRingFDsIn(t *testing.T) {
	dir := t.TempDir()
	links := map[string]string{
		"0":  "/dev/null",
		"3":  ringTarget,
		"12": ringTarget,
		"4":  "anon_inode:[eventfd]",
		"5":  "socket:[1234]",
		"x":  ringTarget, // not a number: ignored
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ringFDsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 12}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ringFDsIn = %v, want %v", got, want)
	}
	if _, err := ringFDsIn(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory gave no error")
	}
}

// TestRingFDsSelf checks the real /proc/self/fd: this test process has no
// rings unless it made one.
func TestRingFDsSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc: ", err)
	}
	fds, err := RingFDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 0 {
		t.Fatalf("fresh test process has io_uring descriptors %v", fds)
	}
}
