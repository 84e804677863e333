package apptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const pgBin = "/usr/lib/postgresql/18/bin/"

// asPostgres runs argv as the postgres user (PostgreSQL refuses to run
// as root); ringfence runs unprivileged too, as the user would run it.
func asPostgres(argv ...string) []string {
	return append([]string{"runuser", "-u", "postgres", "--"}, argv...)
}

// TestPostgreSQL runs PostgreSQL 18 with io_method=io_uring: initdb and
// the server under the profile, pgbench -i, a pgbench run, and a scan of
// a table ten times larger than shared_buffers, which PostgreSQL reads
// through io_uring (caught in flight in pg_aios). Under deny-all every
// read the server submits fails with EACCES, and PostgreSQL reports it as
// an I/O error on the query.
func TestPostgreSQL(t *testing.T) {
	for _, profile := range []string{unconfined, "default", "storage", "network-server", "postgresql"} {
		t.Run(profile, func(t *testing.T) {
			needFilters(t, profile)
			pg := startPostgres(t, profile)
			if got := pg.query(t, "show io_method"); got != "io_uring" {
				t.Fatalf("io_method %q, want io_uring", got)
			}
			mustRun(t, 3*time.Minute, nil, pgBin+"pgbench", "-h", pg.sock, "-U", "postgres", "-i", "-s", "1", "postgres")
			out := mustRun(t, 3*time.Minute, nil, pgBin+"pgbench", "-h", pg.sock, "-U", "postgres", "-t", "200", "postgres")
			if !strings.Contains(out, "number of transactions actually processed: 200/200") || !strings.Contains(out, "number of failed transactions: 0 ") {
				t.Fatalf("pgbench:\n%s", out)
			}
			pg.query(t, "create table big as select g, repeat('x', 500) as pad from generate_series(1, 20000) g")
			size, _ := strconv.Atoi(pg.query(t, "select pg_relation_size('big')"))
			if size < 10*1024*1024 {
				t.Fatalf("table big has %d bytes, want more than 10 times shared_buffers (1 MB)", size)
			}
			// Scan repeatedly until a read is seen in flight in pg_aios:
			// proof that the server reads through io_uring, not just
			// that the setting says so.
			seen := pg.scanUntilAIOSeen(t)
			if !seen {
				t.Errorf("no read of the scan appeared in pg_aios in 20 scans")
			}
			if log := pg.log(t); regexp.MustCompile(`(?m)(ERROR|FATAL|PANIC):`).MatchString(log) {
				t.Errorf("server log has errors:\n%s", tail(log, 30))
			}
		})
	}
	t.Run("deny-all", func(t *testing.T) {
		needFilters(t, "deny-all")
		pg := startPostgres(t, "deny-all")
		r := runCmd(t, time.Minute, nil, pg.psql("select count(*) from pg_class")...)
		if r.exit == 0 || r.timedOut {
			t.Fatalf("a query under deny-all succeeded or hung: %s", r)
		}
		want := regexp.MustCompile(`could not read blocks? .* in file ".*": Permission denied`)
		if !want.MatchString(r.out) {
			t.Errorf("psql did not report the failed read: %s", r)
		}
		if !want.MatchString(pg.log(t)) {
			t.Errorf("server log does not report the failed read:\n%s", tail(pg.log(t), 20))
		}
	})
}

// postgres is a running server in a fresh data directory.
type postgres struct {
	dir, sock string
}

// startPostgres initdbs a cluster with io_method=io_uring and a 1 MB
// shared_buffers (so scans must read), and starts it, both under profile.
// The server is stopped when the test ends.
func startPostgres(t *testing.T, profile string) *postgres {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &postgres{dir: filepath.Join(base, "data"), sock: base}
	if out, err := exec.Command("chown", "postgres:postgres", base).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	initdb := asPostgres(under(profile, pgBin+"initdb", "-D", pg.dir, "-A", "trust", "--no-sync",
		"-c", "io_method=io_uring", "-c", "shared_buffers=1MB", "-c", "max_connections=10",
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+base)...)
	if profile == "deny-all" {
		// initdb's own bootstrap reads through io_uring too; under
		// deny-all it cannot finish, so the cluster is made unconfined
		// and only the server runs confined.
		initdb = asPostgres(pgBin+"initdb", "-D", pg.dir, "-A", "trust", "--no-sync",
			"-c", "io_method=io_uring", "-c", "shared_buffers=1MB", "-c", "max_connections=10",
			"-c", "listen_addresses=", "-c", "unix_socket_directories="+base)
	}
	mustRun(t, 3*time.Minute, nil, initdb...)
	mustRun(t, 2*time.Minute, nil, asPostgres(under(profile, pgBin+"pg_ctl", "-D", pg.dir, "-l", pg.logPath(), "-w", "-t", "60", "start")...)...)
	t.Cleanup(func() {
		runCmd(t, time.Minute, nil, asPostgres(pgBin+"pg_ctl", "-D", pg.dir, "-m", "immediate", "-w", "stop")...)
		os.RemoveAll(base)
	})
	return pg
}

func (pg *postgres) logPath() string { return filepath.Join(pg.sock, "server.log") }

func (pg *postgres) log(t *testing.T) string {
	b, err := os.ReadFile(pg.logPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (pg *postgres) psql(sql string) []string {
	return []string{pgBin + "psql", "-h", pg.sock, "-U", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, "postgres"}
}

func (pg *postgres) query(t *testing.T, sql string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, 2*time.Minute, nil, pg.psql(sql)...))
}

// scanUntilAIOSeen scans table big in the background while polling
// pg_aios, up to 20 times, and reports whether a read was seen.
func (pg *postgres) scanUntilAIOSeen(t *testing.T) bool {
	t.Helper()
	for i := 0; i < 20; i++ {
		scan := exec.Command(pg.psql("select count(*), sum(length(pad)) from big")[0], pg.psql("select count(*), sum(length(pad)) from big")[1:]...)
		var out strings.Builder
		scan.Stdout, scan.Stderr = &out, &out
		if err := scan.Start(); err != nil {
			t.Fatal(err)
		}
		seen := false
		done := make(chan error, 1)
		go func() { done <- scan.Wait() }()
	poll:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("scan: %v: %s", err, out.String())
				}
				break poll
			default:
			}
			got := pg.query(t, "select operation from pg_aios where operation in ('readv', 'read') limit 1")
			if got != "" {
				seen = true
			}
		}
		if want := fmt.Sprintf("20000|%d", 20000*500); strings.TrimSpace(out.String()) != want {
			t.Fatalf("scan returned %q, want %q", out.String(), want)
		}
		if seen {
			return true
		}
	}
	return false
}
