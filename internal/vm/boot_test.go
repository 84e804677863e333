package vm

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/vm/debian"
)

// consoleOK is a guest console as QEMU prints it: firmware noise, kernel
// lines, markers, go test -v output, CRs removed by Boot.
const consoleOK = `SeaBIOS (version 1.16.2)
Booting from ROM...

=== RINGFENCE BOOT release=7.0.13+deb13-amd64 filters=yes

=== RINGFENCE BEGIN example.com/a
=== RUN   TestOne
--- PASS: TestOne (0.00s)
=== RUN   TestTwo
=== RUN   TestTwo/sub
    --- SKIP: TestTwo/sub (0.00s)
--- PASS: TestTwo (0.01s)
PASS

=== RINGFENCE END example.com/a exit=0

=== RINGFENCE BEGIN example.com/b
=== RUN   TestBad
    b_test.go:9: wrong
--- FAIL: TestBad (0.00s)
FAIL

=== RINGFENCE END example.com/b exit=1

=== RINGFENCE DONE
[    2.9] reboot: Power down
`

func k(v string) debian.Kernel {
	kk, ok := debian.ParseKernelPackage("linux-binary-" + v + "+deb13-amd64")
	if !ok {
		panic(v)
	}
	return kk
}

func TestParseConsole(t *testing.T) {
	r := &Result{Kernel: k("7.0.13")}
	ParseConsole(r, []byte(consoleOK))
	if r.Release != "7.0.13+deb13-amd64" || r.Filters != "yes" || !r.Done {
		t.Errorf("release %q filters %q done %v", r.Release, r.Filters, r.Done)
	}
	if len(r.Steps) != 2 {
		t.Fatalf("%d steps, want 2", len(r.Steps))
	}
	a, b := r.Steps[0], r.Steps[1]
	if a.Name != "example.com/a" || a.Exit != 0 || !a.Ended || len(a.Tests) != 3 {
		t.Errorf("step a = %+v", a)
	}
	wantA := []TestResult{{"TestOne", "PASS"}, {"TestTwo/sub", "SKIP"}, {"TestTwo", "PASS"}}
	for i, w := range wantA {
		if i < len(a.Tests) && a.Tests[i] != w {
			t.Errorf("a.Tests[%d] = %+v, want %+v", i, a.Tests[i], w)
		}
	}
	if !strings.Contains(string(a.Output), "=== RUN   TestOne\n") || strings.Contains(string(a.Output), "RINGFENCE") {
		t.Errorf("step a output = %q", a.Output)
	}
	if b.Exit != 1 || len(b.Tests) != 1 || b.Tests[0] != (TestResult{"TestBad", "FAIL"}) {
		t.Errorf("step b = %+v", b)
	}
	if c := r.Count(); c != (Counts{Passed: 2, Failed: 1, Skipped: 1}) {
		t.Errorf("Count = %+v", c)
	}
	if r.OK() {
		t.Error("OK() with a failed test")
	}
	if len(r.Problems) != 0 {
		t.Errorf("problems %v", r.Problems)
	}
}

func TestParseConsoleBroken(t *testing.T) {
	cases := []struct {
		name, console string
		problem       string
		failed        int
	}{
		{"no boot", "Kernel panic - not syncing: VFS: Unable to mount root fs\n", "", 0},
		{"crash mid step", "=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes\n=== RINGFENCE BEGIN p\n=== RUN   TestX\n", "p: no END marker", 1},
		{"step timeout", "=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes\n=== RINGFENCE BEGIN p\n=== RINGFENCE END p exit=-1 timeout\n=== RINGFENCE DONE\n", "p: timed out", 1},
		{"panic without FAIL line", "=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes\n=== RINGFENCE BEGIN p\npanic: boom\n=== RINGFENCE END p exit=2\n=== RINGFENCE DONE\n", "", 1},
		{"guest deadline", "=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes\n=== RINGFENCE TIMEOUT\n", "guest deadline", 0},
		{"init error", "=== RINGFENCE ERROR read config: gone\n", "guest init: read config: gone", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{Kernel: k("7.3.4")}
			ParseConsole(r, []byte(c.console))
			if c.problem != "" && !strings.Contains(strings.Join(r.Problems, "\n"), c.problem) {
				t.Errorf("problems %q, want one containing %q", r.Problems, c.problem)
			}
			if got := r.Count().Failed; got != c.failed {
				t.Errorf("failed = %d, want %d", got, c.failed)
			}
			if r.OK() {
				t.Error("OK() on a broken run")
			}
		})
	}
}

func TestFilterProblem(t *testing.T) {
	for _, c := range []struct {
		version, filters string
		bad              bool
	}{
		{"6.19.14", "no", false},
		{"6.19.14", "yes", true},
		{"7.0.4", "yes", false},
		{"7.0.4", "no", true},
		{"7.3.4", "error:EPERM", true},
		{"7.3.4", "", false}, // no BOOT: reported elsewhere
	} {
		r := &Result{Kernel: k(c.version), Filters: c.filters}
		if got := r.FilterProblem() != ""; got != c.bad {
			t.Errorf("%s filters=%q: problem %q, want problem: %v", c.version, c.filters, r.FilterProblem(), c.bad)
		}
	}
}

func TestWriteReport(t *testing.T) {
	good := &Result{Kernel: k("7.3.4"), Duration: 4 * time.Second}
	ParseConsole(good, []byte(strings.ReplaceAll(strings.ReplaceAll(consoleOK, "7.0.13", "7.3.4"), "exit=1", "exit=0")))
	good.Steps[1].Tests[0].Status = "PASS"
	if !good.OK() {
		t.Fatalf("good run not OK: %+v", good)
	}
	unsupported := &Result{Kernel: k("7.1.13"), Release: "7.1.13+deb13-amd64", Filters: "no", Done: true}
	noBoot := &Result{Kernel: k("6.19.14"), Problems: []string{"QEMU: exit status 1"}, Console: []byte("qemu: bad")}
	cases := []struct {
		name    string
		results []*Result
		ok      bool
		last    string
	}{
		{"all good", []*Result{good}, true, "3 passed, 0 failed, 1 skipped"},
		{"filters missing on 7.1", []*Result{good, unsupported}, false, "3 passed, 1 failed, 1 skipped"},
		{"no boot", []*Result{noBoot}, false, "0 passed, 1 failed"},
		{"nothing", nil, false, "0 passed, 0 failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Matrix{Results: c.results}
			if m.OK() != c.ok {
				t.Errorf("OK() = %v, want %v", m.OK(), c.ok)
			}
			var buf bytes.Buffer
			m.WriteReport(&buf, false)
			lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
			if got := lines[len(lines)-1]; got != c.last {
				t.Errorf("last line %q, want %q\n%s", got, c.last, buf.String())
			}
			for _, r := range c.results {
				if !strings.Contains(buf.String(), r.Kernel.Release) {
					t.Errorf("report does not name %s", r.Kernel.Release)
				}
			}
		})
	}
}

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	var mu = new(syncMutex)
	p := &prefixWriter{w: &buf, mu: &mu.Mutex, prefix: "7.0| "}
	p.Write([]byte("a\r\nb"))
	p.Write([]byte("c\nd"))
	if got := buf.String(); got != "7.0| a\n7.0| bc\n" {
		t.Errorf("got %q", got)
	}
}

func FuzzParseConsole(f *testing.F) {
	f.Add([]byte(consoleOK))
	f.Add([]byte("=== RINGFENCE BEGIN a\n--- FAIL: X (\n=== RINGFENCE BEGIN b\n=== RINGFENCE END a exit=0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Result{Kernel: k("7.0.4")}
		ParseConsole(r, b)
		c := r.Count()
		if c.Passed < 0 || c.Failed < 0 || c.Skipped < 0 {
			t.Fatal("negative count")
		}
		if !r.Done && r.OK() {
			t.Error("OK() without DONE")
		}
		for _, s := range r.Steps {
			if !s.Ended && s.Exit != -1 {
				t.Errorf("step %s did not end but has exit %d", s.Name, s.Exit)
			}
		}
	})
}

type syncMutex struct{ sync.Mutex }

func TestParseConsoleTestTimeout(t *testing.T) {
	console := "=== RINGFENCE BOOT release=7.0.13+deb13-amd64 filters=yes\n" +
		"=== RINGFENCE BEGIN p\n=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestSlow\n" +
		"panic: test timed out after 6m20s\n\trunning tests:\n\t\tTestSlow (6m18s)\n\t\tTestSlow/sub (6m18s)\n\ngoroutine 56 [running]:\n" +
		"=== RINGFENCE END p exit=2\n=== RINGFENCE DONE\n"
	r := &Result{Kernel: k("7.0.13")}
	ParseConsole(r, []byte(console))
	want := []TestResult{{"TestA", "PASS"}, {"TestSlow", "FAIL"}, {"TestSlow/sub", "FAIL"}}
	if len(r.Steps) != 1 || len(r.Steps[0].Tests) != len(want) {
		t.Fatalf("steps %+v", r.Steps)
	}
	for i, w := range want {
		if r.Steps[0].Tests[i] != w {
			t.Errorf("test %d = %+v, want %+v", i, r.Steps[0].Tests[i], w)
		}
	}
	if c := r.Count(); c.Failed != 2 || c.Passed != 1 {
		t.Errorf("count %+v", c)
	}
}

// TestFiguresMarkdown checks that figures the tests log are collected per
// step and summed per kernel into the Markdown table.
func TestFiguresMarkdown(t *testing.T) {
	console := "=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes\n" +
		"=== RINGFENCE BEGIN p\n" +
		"=== RUN   TestA\n" +
		"    a_test.go:1: RINGFENCE_FIGURE checker programs=20000\n" +
		"    a_test.go:2: RINGFENCE_FIGURE mismatches=0\n" +
		"--- PASS: TestA (1.00s)\n" +
		"=== RUN   TestB\n" +
		"    b_test.go:1: RINGFENCE_FIGURE checker programs=1280\n" +
		"    b_test.go:2: RINGFENCE_FIGURE policy-parity requests=12261\n" +
		"    b_test.go:3: RINGFENCE_FIGURE not a figure\n" +
		"--- PASS: TestB (1.00s)\n" +
		"=== RINGFENCE END p exit=0\n" +
		"=== RINGFENCE DONE\n"
	r := &Result{Kernel: k("7.3.4"), Duration: 12 * time.Second}
	ParseConsole(r, []byte(console))
	if len(r.Steps) != 1 || len(r.Steps[0].Figures) != 4 {
		t.Fatalf("steps %+v", r.Steps)
	}
	r619 := &Result{Kernel: k("6.19.14"), Release: "6.19.14+deb13-amd64", Filters: "no", Done: true, Duration: 4 * time.Second}
	m := &Matrix{Results: []*Result{r619, r}, Wall: 20 * time.Second}
	var b strings.Builder
	m.WriteMarkdown(&b)
	want := "| kernel | filters | passed | failed | skipped | time | checker programs | mismatches | policy-parity requests |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" +
		"| 6.19.14 | no | 0 | 0 | 0 | 4 s | — | — | — |\n" +
		"| 7.3.4 | yes | 2 | 0 | 0 | 12 s | 21,280 | 0 | 12,261 |\n" +
		"\n2 passed, 0 failed, 0 skipped; matrix wall time 20 s.\n"
	if b.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", b.String(), want)
	}
}
