package apptest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// TestPrograms checks that the guest userland holds every program the
// application and runtime tests use, and that each one starts.
func TestPrograms(t *testing.T) {
	vmtest.Require(t)
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"ringfence", "probe"}, "filters"},
		{[]string{"/usr/lib/postgresql/18/bin/postgres", "--version"}, "postgres (PostgreSQL) 18."},
		{[]string{"/usr/lib/postgresql/18/bin/pgbench", "--version"}, "pgbench (PostgreSQL) 18."},
		{[]string{"node", "--version"}, "v2"},
		{[]string{"fio", "--version"}, "fio-3."},
		{[]string{"qemu-img", "--version"}, "qemu-img version"},
		{[]string{"qemu-io", "--version"}, "qemu-io version"},
		{[]string{"runc", "--version"}, "runc version 1."},
		{[]string{"crun", "--version"}, "crun version 1."},
		{[]string{"podman", "--version"}, "podman version 5."},
		{[]string{"conmon", "--version"}, "conmon version 2."},
	}
	for _, tt := range tests {
		t.Run(tt.argv[0], func(t *testing.T) {
			out, err := exec.Command(tt.argv[0], tt.argv[1:]...).CombinedOutput()
			if err != nil && tt.argv[0] != "ringfence" {
				t.Fatalf("%s: %v\n%s", strings.Join(tt.argv, " "), err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("%s printed %q, want %q in it", strings.Join(tt.argv, " "), out, tt.want)
			}
		})
	}
}
