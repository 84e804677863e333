// Command benchguest is the guest half of "ringfence vm bench": it runs
// inside a VM booted with the Debian userland and measures, interleaved
// and repeated, the same workloads unconfined and under ringfence's
// profiles, printing one sample per line (see package bench).
//
//	benchguest run -rounds 5 -seconds 3   # the whole benchmark
//	benchguest nop -seconds 3             # one NOP loop, the cheapest request
//	benchguest exec-deny-rest PROFILE -- CMD   # CMD under PROFILE's DENY_REST form
//	benchguest exec-seccomp-only -- CMD        # CMD under the companion seccomp filter alone
//
// Workloads: a loop that submits NOP requests in batches of 32 (requests
// per second), fio 4 KiB random reads on io_uring (plain, with registered
// files and buffers, with SQPOLL; IOPS), "qemu-img bench" 4 KiB reads
// with aio=io_uring on the same file (requests per second), a Node.js
// script with UV_USE_IO_URING=1 that opens a loopback TCP connection,
// echoes 4 bytes on it and closes it, one after the other (connections
// per second; the script is the confined program), and pgbench's select-only
// transactions against a PostgreSQL 18 server with io_method=io_uring and
// 1 MB of shared_buffers, so reads go through io_uring (transactions per
// second). The server is the confined program; pgbench is the client.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/internal/bench"
	"github.com/ringfence/ringfence/kernel"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchguest run|nop [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "nop":
		err = nopMain(os.Args[2:])
	case "exec-deny-rest":
		err = execDenyRest(os.Args[2:])
	case "exec-seccomp-only":
		err = execSeccompOnly(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchguest:", err)
		os.Exit(1)
	}
}

// nopMain submits NOPs for the given time and prints requests per second.
func nopMain(args []string) error {
	fs := flag.NewFlagSet("nop", flag.ContinueOnError)
	secs := fs.Float64("seconds", 3, "how long to submit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := kernel.NewRing(kernel.Params{Entries: 64})
	if err != nil {
		return err
	}
	defer r.Close()
	const batch = 32
	sqes := make([]kernel.SQE, batch)
	for i := range sqes {
		sqes[i] = kernel.SQE{Opcode: abi.OpNop, UserData: uint64(i)}
	}
	n := 0
	start := time.Now()
	end := start.Add(time.Duration(*secs * float64(time.Second)))
	for time.Now().Before(end) {
		if _, err := r.Submit(sqes, 0); err != nil {
			return err
		}
		cqes, err := r.Wait(batch)
		if err != nil {
			return err
		}
		for _, c := range cqes {
			if c.Res < 0 {
				return fmt.Errorf("NOP failed: %v", c.Err())
			}
		}
		n += len(cqes)
	}
	fmt.Printf("nop %d requests %.0f per second\n", n, float64(n)/time.Since(start).Seconds())
	return nil
}

// under returns argv run by "ringfence run" under profile, or argv itself
// for the baseline, or, for bench.SeccompOnly and a profile with
// bench.DenyRestSuffix, argv run by this program's exec-seccomp-only or
// exec-deny-rest.
func under(profile string, argv ...string) []string {
	if profile == bench.Unconfined {
		return argv
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	if profile == bench.SeccompOnly {
		return append([]string{self, "exec-seccomp-only", "--"}, argv...)
	}
	if name, ok := strings.CutSuffix(profile, bench.DenyRestSuffix); ok {
		return append([]string{self, "exec-deny-rest", name, "--"}, argv...)
	}
	return append([]string{"ringfence", "run", "--profile", profile, "--"}, argv...)
}

// execDenyRest runs "PROFILE -- CMD ARGS..." as "ringfence run" would,
// with the profile compiled in the DENY_REST form: the baseline that
// shows what the default form saves.
func execDenyRest(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return fmt.Errorf("usage: benchguest exec-deny-rest PROFILE -- CMD [ARGS...]")
	}
	plan, err := runningPlan(args[0], true)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(args[2])
	if err != nil {
		return err
	}
	if err := ringfence.ApplyToTask(plan, ringfence.ApplyOptions{}); err != nil {
		return err
	}
	return kernel.Exec(path, args[2:], os.Environ())
}

// execSeccompOnly runs "-- CMD ARGS..." with no_new_privs and the
// companion seccomp filter of the default profile's plan, as "ringfence
// run --profile default" installs it, and no io_uring filter.
func execSeccompOnly(args []string) error {
	if len(args) < 2 || args[0] != "--" {
		return fmt.Errorf("usage: benchguest exec-seccomp-only -- CMD [ARGS...]")
	}
	plan, err := runningPlan("default", false)
	if err != nil {
		return err
	}
	prog, err := ringfence.CompanionSeccomp(plan)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(args[1])
	if err != nil {
		return err
	}
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if err := kernel.InstallSeccomp(prog); err != nil {
		return err
	}
	return kernel.Exec(path, args[1:], os.Environ())
}

// runningPlan compiles the built-in profile name for the running kernel,
// in the DENY_REST form if denyRest.
func runningPlan(name string, denyRest bool) (*compile.Plan, error) {
	p, err := ringfence.Profile(name)
	if err != nil {
		return nil, err
	}
	v, err := ringfence.RunningKernel()
	if err != nil {
		return nil, err
	}
	return compile.Compile(p, compile.Options{Kernel: v, ByteOrder: binary.NativeEndian, DenyRest: denyRest})
}

func output(argv []string, env ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/tmp"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

var (
	nopRate  = regexp.MustCompile(`(?m)^nop \d+ requests ([0-9.]+) per second$`)
	qemuTime = regexp.MustCompile(`(?m)^Run completed in ([0-9.]+) seconds\.$`)
	nodeRate = regexp.MustCompile(`(?m)^node \d+ connections ([0-9.]+) per second$`)
	tpsLine  = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)$`)
)

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rounds := fs.Int("rounds", 5, "rounds: each measures every workload under every profile once")
	secs := fs.Int("seconds", 3, "length of one sample")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := prepareFio(); err != nil {
		return err
	}
	servers, err := startServers()
	defer stopServers(servers)
	if err != nil {
		return err
	}
	sec := strconv.Itoa(*secs)
	for round := 1; round <= *rounds; round++ {
		for _, w := range bench.Workloads() {
			// Rotate the order of the profiles from round to round so
			// that no profile always runs first (a cold cache) or last.
			ps := w.Profiles
			k := (round - 1) % len(ps)
			order := append(append([]string{}, ps[k:]...), ps[:k]...)
			for _, p := range order {
				v, err := sample(w.Name, p, sec, self, servers)
				if err != nil {
					return fmt.Errorf("round %d, %s under %s: %w", round, w.Name, p, err)
				}
				fmt.Println(bench.Sample{Workload: w.Name, Profile: p, Round: round, Value: v})
			}
		}
	}
	return nil
}

func sample(workload, profile, sec, self string, servers map[string]string) (float64, error) {
	switch {
	case workload == "nop":
		out, err := output(under(profile, self, "nop", "-seconds", sec))
		if err != nil {
			return 0, err
		}
		return match(nopRate, out)
	case strings.HasPrefix(workload, "fio-"):
		argv := []string{"fio", "--name=" + workload, "--filename=/tmp/bench-fio.dat", "--size=64m",
			"--ioengine=io_uring", "--rw=randread", "--bs=4k", "--iodepth=16", "--time_based", "--runtime=" + sec,
			"--output-format=terse", "--terse-version=3"}
		switch workload {
		case "fio-randread-registered":
			argv = append(argv, "--registerfiles=1", "--fixedbufs=1")
		case "fio-randread-sqpoll":
			argv = append(argv, "--sqthread_poll=1")
		}
		out, err := output(under(profile, argv...))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Split(line, ";")
			if len(f) > 48 && f[0] == "3" {
				if f[4] != "0" {
					return 0, fmt.Errorf("fio error %s:\n%s", f[4], out)
				}
				return strconv.ParseFloat(f[7], 64)
			}
		}
		return 0, fmt.Errorf("no terse line from fio:\n%s", out)
	case workload == "qemu-img-bench":
		// A fixed count, about as many requests as fio does in the
		// same time; the rate is the count over the time it took.
		n, err := strconv.Atoi(sec)
		if err != nil {
			return 0, err
		}
		count := 40000 * n
		out, err := output(under(profile, "qemu-img", "bench", "-f", "raw", "-i", "io_uring", "-c", strconv.Itoa(count),
			"-d", "16", "-s", "4096", "-S", "4096", "/tmp/bench-fio.dat"))
		if err != nil {
			return 0, err
		}
		t, err := match(qemuTime, out)
		if err != nil || t <= 0 {
			return 0, fmt.Errorf("no run time from qemu-img bench:\n%s", out)
		}
		return float64(count) / t, nil
	case workload == "node-tcp-connect":
		out, err := output(under(profile, "node", nodeScriptPath, sec), "UV_USE_IO_URING=1")
		if err != nil {
			return 0, err
		}
		return match(nodeRate, out)
	case workload == "pgbench-select":
		out, err := output([]string{pgBin + "pgbench", "-h", servers[profile], "-U", "postgres", "-S", "-n", "-T", sec, "postgres"})
		if err != nil {
			return 0, err
		}
		return match(tpsLine, out)
	}
	return 0, fmt.Errorf("unknown workload %q", workload)
}

func match(re *regexp.Regexp, out string) (float64, error) {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no result in:\n%s", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// prepareFio lays out fio's file once, so every sample reads the same
// data from the page cache (qemu-img bench reads it too), and writes the
// Node.js script.
func prepareFio() error {
	_, err := output([]string{"fio", "--name=layout", "--filename=/tmp/bench-fio.dat", "--size=64m", "--rw=write", "--bs=1m", "--ioengine=psync", "--output-format=terse"})
	if err != nil {
		return err
	}
	return os.WriteFile(nodeScriptPath, []byte(nodeScript), 0o644)
}

const nodeScriptPath = "/tmp/bench-node.js"

// nodeScript opens a loopback TCP connection to its own echo server,
// sends 4 bytes, waits for them to come back and closes it (no Nagle
// delay on either end), one connection after the other, for argv[2]
// seconds; every connection adds and removes descriptors in libuv's epoll
// set.
const nodeScript = `'use strict';
const net = require('net');
const secs = Number(process.argv[2]);
const server = net.createServer(s => { s.setNoDelay(true); s.pipe(s); });
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  const start = Date.now();
  const end = start + secs * 1000;
  let n = 0;
  const next = () => {
    if (Date.now() >= end) {
      const el = (Date.now() - start) / 1000;
      console.log('node ' + n + ' connections ' + (n / el).toFixed(0) + ' per second');
      server.close();
      return;
    }
    const c = net.connect(port, '127.0.0.1', () => { c.setNoDelay(true); c.write('ping'); });
    c.on('data', () => c.destroy());
    c.on('error', e => { console.error(e); process.exit(1); });
    c.on('close', () => { n++; next(); });
  };
  next();
});
`

const pgBin = "/usr/lib/postgresql/18/bin/"

// startServers starts one PostgreSQL server per profile pgbench runs
// under, each confined by its profile from initdb on, and fills each with
// pgbench's tables (scale 1: a 13 MB accounts table against 1 MB of
// shared_buffers; pgbench vacuums them). Autovacuum is off: its workers
// woke during some servers' first samples, a quarter of a 1 s sample, at
// the same moments in every run (the clock counts instructions). It
// returns each profile's socket directory.
func startServers() (map[string]string, error) {
	servers := map[string]string{}
	for _, w := range bench.Workloads() {
		if w.Name != "pgbench-select" {
			continue
		}
		for i, p := range w.Profiles {
			dir := filepath.Join("/tmp", fmt.Sprintf("bench-pg-%d", i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return servers, err
			}
			if _, err := output([]string{"chown", "postgres:postgres", dir}); err != nil {
				return servers, err
			}
			data := filepath.Join(dir, "data")
			initdb := under(p, pgBin+"initdb", "-D", data, "-A", "trust", "--no-sync",
				"-c", "io_method=io_uring", "-c", "shared_buffers=1MB", "-c", "max_connections=10", "-c", "autovacuum=off",
				"-c", "listen_addresses=", "-c", "unix_socket_directories="+dir)
			if _, err := output(append([]string{"runuser", "-u", "postgres", "--"}, initdb...)); err != nil {
				return servers, err
			}
			start := under(p, pgBin+"pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "start")
			if _, err := output(append([]string{"runuser", "-u", "postgres", "--"}, start...)); err != nil {
				return servers, err
			}
			servers[p] = dir
			if _, err := output([]string{pgBin + "pgbench", "-h", dir, "-U", "postgres", "-i", "-s", "1", "postgres"}); err != nil {
				return servers, err
			}
		}
	}
	return servers, nil
}

func stopServers(servers map[string]string) {
	for _, dir := range servers {
		output([]string{"runuser", "-u", "postgres", "--", pgBin + "pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop"})
	}
}
