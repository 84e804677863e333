// Package bench measures what ringfence's filters cost real workloads:
// "ringfence vm bench" boots one kernel with the Debian guest userland and
// runs, in that one boot, interleaved and repeated, each workload
// unconfined and under each profile it belongs under (the guest half is
// internal/bench/benchguest). Under emulation absolute numbers mean
// little; the ratio of a profile's result to the unconfined result of the
// same round, in the same boot, is what the report gives, with its spread
// over the rounds.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vminit"
)

// Unconfined names the baseline: the workload without ringfence.
const Unconfined = "unconfined"

// DenyRestSuffix marks a profile measured in the DENY_REST form of its
// plan (compile.Options.DenyRest: a "ret #1" filter on every opcode it
// always allows, DENY_REST on the last registration), as ringfence
// compiled it before: "default@deny-rest" next to "default" shows, in
// the same boot, what registering no filter for those opcodes saves.
const DenyRestSuffix = "@deny-rest"

// SeccompOnly names a second baseline: the workload under no io_uring
// filter at all, only the companion seccomp filter "ringfence run"
// installs with the default profile (and no_new_privs). Any seccomp
// filter sends every system call of the task through the kernel's slower
// entry path; a container pays that already for its runtime's own
// profile. Next to "default" it shows how much of the profile's cost is
// that path and how much the io_uring filters.
const SeccompOnly = "seccomp-only"

// Workload is one measured program and the profiles it runs under.
type Workload struct {
	// Name identifies the workload in samples and reports.
	Name string
	// Unit is what a sample counts, per second.
	Unit string
	// Profiles are the baseline and the built-in profiles measured.
	Profiles []string
}

// Workloads returns the benchmark's workloads: the NOP loop (the
// cheapest request, so a filter's largest share: every NOP runs the
// canary filter "ringfence run" registers; under every profile that
// allows it), fio 4 KiB random reads (plain, registered
// files and buffers, SQPOLL) under the profiles for storage programs, and
// pgbench select-only transactions with the server under every profile it
// works under, the postgresql preset included. Between them, QEMU's
// block layer ("qemu-img bench", 4 KiB reads with aio=io_uring) under the
// storage profile, and Node.js with UV_USE_IO_URING=1 opening, echoing
// on and closing loopback TCP connections (libuv's epoll_ctl calls go
// through io_uring) under network-server. Every workload but SQPOLL
// (which makes almost no system calls) also runs under SeccompOnly, and
// the DENY_REST form of default.
func Workloads() []Workload {
	old := "default" + DenyRestSuffix
	return []Workload{
		{"nop", "requests/s", []string{Unconfined, SeccompOnly, "default", old, "storage", "network-server"}},
		{"fio-randread", "IOPS", []string{Unconfined, SeccompOnly, "default", old, "storage"}},
		{"fio-randread-registered", "IOPS", []string{Unconfined, SeccompOnly, "default", old, "storage"}},
		{"fio-randread-sqpoll", "IOPS", []string{Unconfined, "default", old, "storage"}},
		{"qemu-img-bench", "requests/s", []string{Unconfined, SeccompOnly, "default", old, "storage"}},
		{"node-tcp-connect", "connections/s", []string{Unconfined, SeccompOnly, "default", old, "network-server"}},
		{"pgbench-select", "tps", []string{Unconfined, SeccompOnly, "default", old, "storage", "network-server", "postgresql"}},
	}
}

// Sample is one measurement: a workload under a profile in one round.
type Sample struct {
	Workload, Profile string
	Round             int
	Value             float64
}

// samplePrefix starts each sample line the guest prints.
const samplePrefix = "SAMPLE "

// String formats s as the guest prints it: "SAMPLE workload profile round value".
func (s Sample) String() string {
	return fmt.Sprintf("%s%s %s %d %g", samplePrefix, s.Workload, s.Profile, s.Round, s.Value)
}

// ParseSamples reads the sample lines in output and ignores every other
// line. A malformed sample line is an error naming its line number.
func ParseSamples(output string) ([]Sample, error) {
	var out []Sample
	for i, line := range strings.Split(output, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), samplePrefix)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want \"SAMPLE workload profile round value\", got %q", i+1, line)
		}
		round, err := strconv.Atoi(f[2])
		if err != nil || round < 1 {
			return nil, fmt.Errorf("line %d: round %q is not a positive number", i+1, f[2])
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("line %d: value %q is not a finite non-negative number", i+1, f[3])
		}
		out = append(out, Sample{Workload: f[0], Profile: f[1], Round: round, Value: v})
	}
	return out, nil
}

// Row is the summary of one workload under one profile.
type Row struct {
	Workload, Profile, Unit string
	// Median is the median of the profile's samples (per second).
	Median float64
	// Ratio is the median over the rounds of the profile's value divided
	// by the unconfined value of the same round; Min and Max are the
	// smallest and largest of those per-round ratios. 1 means no cost;
	// 0.9 means 10% fewer per second. For the baseline all three are 1.
	Ratio, Min, Max float64
	// Rounds is the number of rounds with both values.
	Rounds int
}

// Summarize turns samples into one row per workload and profile, in the
// order of Workloads, each profile's ratios taken against the unconfined
// sample of the same round.
func Summarize(samples []Sample) []Row {
	type key struct{ w, p string }
	by := map[key]map[int]float64{}
	for _, s := range samples {
		k := key{s.Workload, s.Profile}
		if by[k] == nil {
			by[k] = map[int]float64{}
		}
		by[k][s.Round] = s.Value
	}
	var rows []Row
	for _, w := range Workloads() {
		base := by[key{w.Name, Unconfined}]
		for _, p := range w.Profiles {
			vals := by[key{w.Name, p}]
			if len(vals) == 0 {
				continue
			}
			var all, ratios []float64
			for round, v := range vals {
				all = append(all, v)
				if b, ok := base[round]; ok && b > 0 {
					ratios = append(ratios, v/b)
				}
			}
			r := Row{Workload: w.Name, Profile: p, Unit: w.Unit, Median: median(all), Rounds: len(ratios)}
			if len(ratios) > 0 {
				sort.Float64s(ratios)
				r.Ratio, r.Min, r.Max = median(ratios), ratios[0], ratios[len(ratios)-1]
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteTable prints rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| workload | profile | median | ratio to unconfined (median) | spread (min-max) | rounds |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %.0f %s | %.3f | %.3f-%.3f | %d |\n", r.Workload, r.Profile, r.Median, r.Unit, r.Ratio, r.Min, r.Max, r.Rounds)
	}
}

// Options configure Run.
type Options struct {
	// Kernel is the kernel to boot ("7.3").
	Kernel string
	// Rounds and Seconds: each round measures every workload under every
	// profile once, each sample lasting Seconds.
	Rounds, Seconds int
	// WallClock measures with the host's time passing in the guest
	// instead of the instruction clock (see vm.Machine.InstructionClock).
	WallClock bool
	// Log receives progress lines; Console, if set, the guest's console.
	Log, Console io.Writer
}

// Result is a benchmark run: the samples, the summary, and where it ran.
type Result struct {
	Release string
	Samples []Sample
	Rows    []Row
	Wall    time.Duration
}

// Run boots the kernel with the guest userland, runs the benchmark and
// summarizes it. It needs the source tree (it builds the guest half).
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Rounds < 1 || o.Seconds < 1 {
		return nil, fmt.Errorf("bench: rounds and seconds must be at least 1")
	}
	start := time.Now()
	src, err := vm.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "ringfence-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "benchguest")
	if err := vm.BuildStatic(ctx, src, bin, "./internal/bench/benchguest"); err != nil {
		return nil, err
	}
	samples := 0
	for _, w := range Workloads() {
		samples += len(w.Profiles)
	}
	// Each sample: its seconds plus up to 6 s of program start-up under
	// emulation; the PostgreSQL servers take about 15 s each to set up.
	servers := 0
	for _, w := range Workloads() {
		if w.Name == "pgbench-select" {
			servers = len(w.Profiles)
		}
	}
	budget := 120 + 15*servers + o.Rounds*samples*(o.Seconds+6)
	g := &vm.Guest{
		Kernel:  o.Kernel,
		Files:   []vm.File{{Path: vm.GuestBinDir + "/benchguest", HostPath: bin, Mode: 0o755}},
		Log:     o.Log,
		Console: o.Console,

		InstructionClock: !o.WallClock,
	}
	r, err := g.Run(ctx, vminit.Step{
		Name: "bench", Path: vm.GuestBinDir + "/benchguest", Dir: "/tmp", TimeoutSec: budget,
		Args: []string{"run", "-rounds", strconv.Itoa(o.Rounds), "-seconds", strconv.Itoa(o.Seconds)},
	})
	if err != nil {
		return nil, err
	}
	if msg := r.Failed(); msg != "" {
		out := ""
		if len(r.Steps) > 0 {
			out = string(r.Steps[0].Output)
		}
		return nil, fmt.Errorf("bench on %s: %s\n%s", r.Release, msg, out)
	}
	s, err := ParseSamples(string(r.Steps[0].Output))
	if err != nil {
		return nil, err
	}
	return &Result{Release: r.Release, Samples: s, Rows: Summarize(s), Wall: time.Since(start)}, nil
}
