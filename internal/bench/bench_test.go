package bench

import (
	"math"
	"strings"
	"testing"
)

func TestParseSamples(t *testing.T) {
	out := "kernel noise\nSAMPLE nop unconfined 1 1000\n  SAMPLE nop default 1 900.5\nfio: something\nSAMPLE fio-randread storage 2 0\n"
	got, err := ParseSamples(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{{"nop", "unconfined", 1, 1000}, {"nop", "default", 1, 900.5}, {"fio-randread", "storage", 2, 0}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d: %v, want %v", i, got[i], want[i])
		}
	}
	// What a sample prints parses back to itself.
	s := Sample{"pgbench-select", "postgresql", 3, 741.287864}
	back, err := ParseSamples(s.String())
	if err != nil || len(back) != 1 || back[0] != s {
		t.Errorf("round trip of %v: %v, %v", s, back, err)
	}
}

func TestParseSamplesErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"SAMPLE nop unconfined 1", `line 1: want "SAMPLE workload profile round value"`},
		{"x\nSAMPLE nop unconfined 0 5", "line 2: round \"0\" is not a positive number"},
		{"SAMPLE nop unconfined one 5", `round "one"`},
		{"SAMPLE nop unconfined 1 NaN", `value "NaN" is not a finite non-negative number`},
		{"SAMPLE nop unconfined 1 -3", `value "-3"`},
		{"SAMPLE nop unconfined 1 +Inf", `value "+Inf"`},
	} {
		if _, err := ParseSamples(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var samples []Sample
	// Three rounds; default costs 10%, 20% and 0% in them; storage has
	// no unconfined partner in round 3 (that round is left out of its
	// ratio).
	base := []float64{1000, 2000, 500}
	def := []float64{900, 1600, 500}
	for i := range base {
		samples = append(samples, Sample{"nop", Unconfined, i + 1, base[i]}, Sample{"nop", "default", i + 1, def[i]})
	}
	samples = append(samples, Sample{"nop", "storage", 1, 1100}, Sample{"nop", "storage", 4, 7})
	samples = append(samples, Sample{"unknown-workload", "default", 1, 1})
	rows := Summarize(samples)
	if len(rows) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	want := []Row{
		{"nop", Unconfined, "requests/s", 1000, 1, 1, 1, 3},
		{"nop", "default", "requests/s", 900, 0.9, 0.8, 1, 3},
		{"nop", "storage", "requests/s", (1100 + 7) / 2.0, 1.1, 1.1, 1.1, 1},
	}
	for i, w := range want {
		g := rows[i]
		if g.Workload != w.Workload || g.Profile != w.Profile || g.Unit != w.Unit || g.Rounds != w.Rounds ||
			!near(g.Median, w.Median) || !near(g.Ratio, w.Ratio) || !near(g.Min, w.Min) || !near(g.Max, w.Max) {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	var b strings.Builder
	WriteTable(&b, rows)
	if !strings.Contains(b.String(), "| nop | default | 900 requests/s | 0.900 | 0.800-1.000 | 3 |") {
		t.Errorf("table:\n%s", b.String())
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestWorkloadsHaveBaselineFirst(t *testing.T) {
	if len(Workloads()) == 0 {
		t.Fatal("no workloads")
	}
	for _, w := range Workloads() {
		if len(w.Profiles) < 2 || w.Profiles[0] != Unconfined || w.Unit == "" {
			t.Errorf("%s: profiles %v, unit %q: want the baseline first and at least one profile", w.Name, w.Profiles, w.Unit)
		}
	}
}

func FuzzParseSamples(f *testing.F) {
	f.Add("SAMPLE nop unconfined 1 1000\nSAMPLE nop default 1 900")
	f.Add("SAMPLE a b 1 1e308")
	f.Fuzz(func(t *testing.T, s string) {
		samples, err := ParseSamples(s)
		if err != nil {
			return
		}
		for _, x := range samples {
			if x.Round < 1 || x.Value < 0 || math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
				t.Fatalf("accepted %+v", x)
			}
		}
		Summarize(samples)
	})
}
