package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/examples"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/profiles"
)

// verifyCmdOutput runs "ringfence verify ARGS" as a helper process; its verify
// child re-executes the test binary as a helper too.
func verifyCmdOutput(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runHelper(t, helperCmd("main", append([]string{"verify"}, args...)...))
}

// TestVerifyInVM runs "ringfence verify" on every example policy and every
// built-in profile: the kernel's answers must match ringfence's on every
// boundary request. A policy that needs a newer kernel must be refused
// with the reason.
func TestVerifyInVM(t *testing.T) {
	needFilters(t)
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	type target struct{ name, arg string }
	var targets []target
	files, err := examples.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".cases.yaml") {
			continue
		}
		data, _ := examples.FS.ReadFile(f.Name())
		path := filepath.Join(dir, f.Name())
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target{"examples/" + f.Name(), path})
	}
	for _, n := range profiles.Names() {
		targets = append(targets, target{"profile " + n, "profile:" + n})
	}
	if len(targets) < 5 {
		t.Fatalf("only %d policies to verify", len(targets))
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			p, _, _, err := (&env{}).loadPolicy(tg.arg)
			if err != nil {
				t.Fatal(err)
			}
			out, errs, code := verifyCmdOutput(t, tg.arg)
			if k.Less(p.Needs()) {
				if code != exitUsage || !strings.Contains(errs, "7.2") {
					t.Fatalf("policy needs %v, kernel is %v: exit %d, stderr %q; want 2 and the reason", p.Needs(), k, code, errs)
				}
				t.Logf("needs Linux %v: refused on %v as it should be", p.Needs(), k)
				return
			}
			if code != exitOK {
				t.Fatalf("verify exit %d\n%s\n%s", code, out, errs)
			}
			t.Log(strings.TrimSpace(lastLine(out)))
		})
	}
}

// TestVerifyCatchesMismatch makes sure verify can fail: a child that
// applies a different policy than the one predicted must be caught.
func TestVerifyCatchesMismatch(t *testing.T) {
	needFilters(t)
	k, _ := kernel.Version()
	p, err := ringfence.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ringfence.Compile(p, k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := verifyCases(p, dir)
	t.Setenv(helperMark, "1")
	base, err := verifyChild(verifyChildInput{Name: "default", Cases: cases})
	if err != nil {
		t.Fatal(err)
	}
	deny, _ := profiles.Get("deny-all")
	got, err := verifyChild(verifyChildInput{Policy: deny, Name: "deny-all", Cases: cases})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	code := exitCodeOf(verifyReport(&sb, "default (applied: deny-all)", "", k, p, plan, cases, base, got, false))
	if code != exitDenied || !strings.Contains(sb.String(), "DIFFERS") {
		t.Fatalf("verify did not catch deny-all applied for default: exit %d\n%s", code, sb.String())
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
