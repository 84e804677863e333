package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/profiles"
)

func TestProfilesCommand(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		stdout     []string // substrings
		stderrPart string
	}{
		{[]string{}, exitOK, []string{"default ", "deny-all ", "network-server ", "storage "}, ""},
		{[]string{"show", "storage"}, exitOK, []string{"# storage:", "version: 1", "default: deny"}, ""},
		{[]string{"show", "nope"}, exitUsage, nil, "unknown profile \"nope\""},
		{[]string{"bogus"}, exitUsage, nil, "usage: ringfence profiles"},
		{[]string{"-h"}, exitOK, []string{"usage: ringfence profiles"}, ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(&env{stdout: &out, stderr: &errb}, append([]string{"profiles"}, c.args...))
		if code != c.code {
			t.Errorf("profiles %v: exit %d, want %d (stderr %q)", c.args, code, c.code, errb.String())
		}
		for _, s := range c.stdout {
			if !strings.Contains(out.String(), s) {
				t.Errorf("profiles %v: stdout lacks %q:\n%s", c.args, s, out.String())
			}
		}
		if c.stderrPart != "" && !strings.Contains(errb.String(), c.stderrPart) {
			t.Errorf("profiles %v: stderr lacks %q: %q", c.args, c.stderrPart, errb.String())
		}
	}
	// "show" prints exactly the embedded text.
	var out bytes.Buffer
	run(&env{stdout: &out, stderr: &out}, []string{"profiles", "show", "default"})
	want, _ := profiles.Get("default")
	if out.String() != string(want) {
		t.Error("profiles show default differs from the embedded profile")
	}
}
