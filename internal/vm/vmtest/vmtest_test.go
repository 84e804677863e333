package vmtest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBootedKernel checks that the guest runs the kernel the harness meant
// to boot, as the kernel itself reports it.
func TestBootedKernel(t *testing.T) {
	Require(t)
	want := Release()
	if want == "" {
		t.Fatal("the harness did not say which kernel it booted")
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(rel)); got != want {
		t.Errorf("uname -r = %q, harness booted %q", got, want)
	}
	ver, err := os.ReadFile("/proc/version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ver), "Linux version "+want+" ") {
		t.Errorf("/proc/version = %q, want it to start with %q", ver, "Linux version "+want)
	}
}

// TestGuestEnvironment checks what the guest init promises every test:
// /proc, /sys, /dev and a writable /tmp, the package directory (with its
// testdata) as the working directory, and not being PID 1.
func TestGuestEnvironment(t *testing.T) {
	Require(t)
	for _, p := range []string{"/proc/self/status", "/sys/kernel", "/dev/null"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	f, err := os.CreateTemp("", "probe")
	if err != nil {
		t.Fatalf("temporary file: %v", err)
	}
	f.Close()
	os.Remove(f.Name())
	b, err := os.ReadFile("testdata/marker.txt")
	if err != nil || strings.TrimSpace(string(b)) != "vmtest testdata" {
		t.Errorf("testdata/marker.txt = %q, %v; want the package's testdata in the working directory", b, err)
	}
	if os.Getpid() == 1 {
		t.Error("the test runs as PID 1; the init should run it as a child")
	}
}

// TestInVMOnHost checks InVM against the environment it reads.
func TestInVMOnHost(t *testing.T) {
	t.Setenv("RINGFENCE_IN_VM", "")
	if InVM() {
		t.Error("InVM() = true with RINGFENCE_IN_VM empty")
	}
	t.Setenv("RINGFENCE_IN_VM", "1")
	if !InVM() {
		t.Error("InVM() = false with RINGFENCE_IN_VM=1")
	}
}

// TestLoopback checks that the guest init brought up the loopback
// interface: a TCP connection to 127.0.0.1 and to ::1 works.
func TestLoopback(t *testing.T) {
	Require(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen %s: %v", addr, err)
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Errorf("dial %s: %v", ln.Addr(), err)
		} else {
			c.Close()
		}
		ln.Close()
	}
}

// TestMain hangs instead of testing when RINGFENCE_VMTEST_HANG=1: package
// vm sets it to check that the guest init enforces step deadlines.
func TestMain(m *testing.M) {
	if os.Getenv("RINGFENCE_VMTEST_HANG") == "1" {
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}
