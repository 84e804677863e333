package apptest

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// fioJob is one fio configuration: I/O pattern and how fio drives the ring.
type fioJob struct {
	name string
	args []string
}

// fioJobs are the configurations the tests and the benchmark run: random
// reads and writes of 4 KiB through io_uring, plain, with registered files
// and buffers (io_uring_register FILES and BUFFERS), and with an SQPOLL
// thread.
func fioJobs() []fioJob {
	return []fioJob{
		{"randread", []string{"--rw=randread"}},
		{"randwrite", []string{"--rw=randwrite"}},
		{"randread-registered", []string{"--rw=randread", "--registerfiles=1", "--fixedbufs=1"}},
		{"randwrite-registered", []string{"--rw=randwrite", "--registerfiles=1", "--fixedbufs=1"}},
		{"randread-sqpoll", []string{"--rw=randread", "--sqthread_poll=1"}},
	}
}

// fioArgv returns fio's command line for job on file, running for io
// requests (number_ios) rather than for a time, so that every run does the
// same work; terse output version 3 on stdout.
func fioArgv(job fioJob, file string, ios int) []string {
	return append([]string{"fio", "--name=" + job.name, "--filename=" + file, "--size=8m",
		"--ioengine=io_uring", "--bs=4k", "--iodepth=8", "--number_ios=" + strconv.Itoa(ios),
		"--output-format=terse", "--terse-version=3"}, job.args...)
}

// fioTerse is what a terse v3 line says about a job.
type fioTerse struct {
	err                 int
	readIOs, writeIOs   int64
	readIOPS, writeIOPS float64
}

// parseFioTerse reads fio's terse version 3 line: field 5 is the error,
// 6-8 read KiB, bandwidth and IOPS, 47-49 the same for writes; the number
// of I/Os is KiB/4 for 4 KiB blocks.
func parseFioTerse(out string) (fioTerse, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ";")
		if len(f) < 50 || f[0] != "3" {
			continue
		}
		var r fioTerse
		var err error
		num := func(s string) float64 {
			v, e := strconv.ParseFloat(s, 64)
			if e != nil && err == nil {
				err = e
			}
			return v
		}
		r.err = int(num(f[4]))
		r.readIOs = int64(num(f[5])) / 4
		r.readIOPS = num(f[7])
		r.writeIOs = int64(num(f[46])) / 4
		r.writeIOPS = num(f[48])
		return r, err == nil
	}
	return fioTerse{}, false
}

// fioDenyFunc is where fio reports the failure under deny-all: the first
// request for plain jobs, the registration for the others.
func fioDenyFunc(job fioJob) string {
	has := func(arg string) bool {
		for _, a := range job.args {
			if a == arg {
				return true
			}
		}
		return false
	}
	switch {
	case has("--fixedbufs=1"):
		return "func=io_queue_init" // buffers are registered with the ring
	case has("--registerfiles=1"), has("--sqthread_poll=1"):
		return "func=ioring_register_files"
	}
	return "func=io_u error"
}

// TestFio runs fio with ioengine=io_uring: random 4 KiB reads and writes,
// with and without registered files and buffers, and with SQPOLL. Each
// job must complete all its I/O without error, unconfined and under every
// profile for storage programs; under deny-all fio must stop with its
// I/O error report (EACCES on the first request), not hang.
func TestFio(t *testing.T) {
	const ios = 512
	for _, profile := range []string{unconfined, "default", "storage"} {
		t.Run(profile, func(t *testing.T) {
			needFilters(t, profile)
			for _, job := range fioJobs() {
				file := "/tmp/fio-" + profile + ".dat"
				r := runCmd(t, 3*time.Minute, nil, under(profile, fioArgv(job, file, ios)...)...)
				if r.exit != 0 || r.timedOut {
					t.Errorf("%s: %s", job.name, r)
					continue
				}
				res, ok := parseFioTerse(r.out)
				if !ok {
					t.Errorf("%s: no terse line: %s", job.name, r)
					continue
				}
				done := res.readIOs + res.writeIOs
				if res.err != 0 || done != ios {
					t.Errorf("%s: error %d, %d I/Os done, want 0 and %d: %s", job.name, res.err, done, ios, r)
				}
			}
		})
	}
	t.Run("deny-all", func(t *testing.T) {
		needFilters(t, "deny-all")
		for _, job := range fioJobs() {
			r := runCmd(t, 3*time.Minute, nil, under("deny-all", fioArgv(job, "/tmp/fio-deny.dat", ios)...)...)
			if r.exit == 0 || r.timedOut {
				t.Errorf("%s: fio under deny-all succeeded or hung: %s", job.name, r)
				continue
			}
			// Plain jobs fail on their first request (io_u error); jobs
			// that register files or buffers (SQPOLL registers its
			// files) fail earlier, at io_uring_register, which deny-all's
			// empty register section refuses: fio reports either with
			// errno 13.
			if !strings.Contains(r.out, "err=13/") || !strings.Contains(r.out, "error=Permission denied") {
				t.Errorf("%s: fio did not report a failed io_uring call (err=13, Permission denied): %s", job.name, r)
			}
			if wantFunc := fioDenyFunc(job); !strings.Contains(r.out, wantFunc) {
				t.Errorf("%s: fio's error is not in %s: %s", job.name, wantFunc, r)
			}
		}
	})
}
