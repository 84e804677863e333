package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMain runs main itself when the test re-executes this binary.
func TestMain(m *testing.M) {
	if os.Getenv("RINGFENCE_MAIN_TEST") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestRuntimeDispatch: called as ringfence-runtime (a link), or as
// "ringfence oci-runtime", the binary is the OCI runtime shim and hands a
// command to the real runtime with runc's arguments unchanged.
func TestRuntimeDispatch(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "fake-runc")
	if err := os.WriteFile(rt, []byte("#!/bin/sh\necho \"$0 $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "ringfence-runtime")
	if err := os.Symlink(os.Args[0], link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{link, "--root", "/run/x", "--systemd-cgroup", "kill", "c1", "TERM"}, rt + " --root /run/x --systemd-cgroup kill c1 TERM\n"},
		{[]string{os.Args[0], "oci-runtime", "--log", "/l", "--log-format", "json", "delete", "--force", "c1"}, rt + " --log /l --log-format json delete --force c1\n"},
	}
	for _, c := range cases {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Env = append(os.Environ(), "RINGFENCE_MAIN_TEST=1", "RINGFENCE_RUNTIME="+rt)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != c.want {
			t.Errorf("%q: %v, output %q; want %q", c.argv, err, out, c.want)
		}
	}
}
