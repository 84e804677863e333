package kernel

import (
	"errors"
	"strings"
	"testing"
)

// status is /proc/PID/status with the given CapEff and CapAmb values.
func status(eff, amb string) string {
	return "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t" + eff + "\nCapEff:\t" + eff +
		"\nCapBnd:\t000001ffffffffff\nCapAmb:\t" + amb + "\nNoNewPrivs:\t1\n"
}

func TestStatusCaps(t *testing.T) {
	eff, amb, err := statusCaps(status("0000000000080000", "0000000000000001"))
	if err != nil || eff != 1<<capSysPtrace || amb != 1 {
		t.Fatalf("statusCaps = %#x, %#x, %v", eff, amb, err)
	}
	for _, bad := range []string{"", "CapEff:\t0\n", status("zz", "0")} {
		if _, _, err := statusCaps(bad); err == nil {
			t.Errorf("statusCaps(%q) succeeded", bad)
		}
	}
}

// TestPtraceWarning: who may ptrace processes outside its descendants is
// warned about: root and holders of CAP_SYS_PTRACE below scope 3, anyone
// at scope 0 or without Yama; nobody at scope 3.
func TestPtraceWarning(t *testing.T) {
	const ptrace = 1 << capSysPtrace
	errRead := errors.New("read failed")
	for _, c := range []struct {
		name     string
		scope    int
		scopeErr error
		euid     int
		caps     uint64
		capsErr  error
		want     string // "" for no warning, else a substring
	}{
		{"user, scope 1", 1, nil, 1000, 0, nil, ""},
		{"user, scope 2", 2, nil, 1000, 0, nil, ""},
		{"user, scope 0", 0, nil, 1000, 0, nil, "ptrace_scope is 0"},
		{"user, no Yama", -1, nil, 1000, 0, nil, "no Yama"},
		{"root, scope 1", 1, nil, 0, ptrace, nil, "running as root"},
		{"root, scope 2", 2, nil, 0, 0, nil, "running as root"},
		{"root, scope 3", 3, nil, 0, ptrace, nil, ""},
		{"CAP_SYS_PTRACE, scope 1", 1, nil, 1000, ptrace, nil, "holds CAP_SYS_PTRACE"},
		{"CAP_SYS_PTRACE, scope 2", 2, nil, 1000, ptrace | 1, nil, "holds CAP_SYS_PTRACE"},
		{"CAP_SYS_PTRACE, scope 0", 0, nil, 1000, ptrace, nil, "holds CAP_SYS_PTRACE"},
		{"CAP_SYS_PTRACE, scope 3", 3, nil, 1000, ptrace, nil, ""},
		{"other capabilities, scope 1", 1, nil, 1000, ^uint64(ptrace), nil, ""},
		{"capabilities unreadable", 1, nil, 1000, 0, errRead, "cannot tell whether the program holds CAP_SYS_PTRACE"},
		{"scope unreadable", 0, errRead, 1000, 0, nil, "cannot tell"},
	} {
		got := ptraceWarning(c.scope, c.scopeErr, c.euid, c.caps, c.capsErr)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: warning %q, want %q", c.name, got, c.want)
		}
	}
}

func TestStatusValue(t *testing.T) {
	s := "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t3\n"
	for name, want := range map[string]string{"Seccomp": "2", "Seccomp_filters": "3", "Name": "x"} {
		if got, ok := statusValue(s, name); !ok || got != want {
			t.Errorf("statusValue(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if got, ok := statusValue(s, "Seccomp_f"); ok {
		t.Errorf("statusValue(Seccomp_f) = %q, found", got)
	}
}
