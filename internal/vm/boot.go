// Package vm runs programs inside real Linux kernels under QEMU: it is
// ringfence's kernel-matrix harness.
//
// A run packs an initramfs holding the guest init (internal/vminit/pid1),
// the programs to run and their configuration, boots a Debian kernel
// (fetched by package vm/debian) with qemu-system-x86_64, reads the serial
// console, and parses it into per-step and per-test results. Test runs
// build the project's in-VM test binaries with "go test -c" first, so they
// need the source tree and the Go toolchain.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/initramfs"
	"github.com/ringfence/ringfence/internal/vminit"
)

// QEMU is the emulator the harness runs.
const QEMU = "qemu-system-x86_64"

// EnvAccel names the environment variable that chooses QEMU's accelerator
// ("tcg", the default, or "kvm"). KVM is not the default: on the machines
// ringfence was developed on, /dev/kvm exists but nested KVM fails to set
// up the guest CPU (MSR 0x10a) or hangs, while plain emulation boots a
// Debian kernel in seconds.
const EnvAccel = "RINGFENCE_QEMU_ACCEL"

// File is a file to put into the guest's initramfs.
type File struct {
	// Path is the absolute path in the guest.
	Path string
	// Mode holds the permission bits; 0 means 0o755.
	Mode os.FileMode
	// Data is the content, or, if HostPath is set, ignored.
	Data []byte
	// HostPath names a host file to copy.
	HostPath string
}

// Machine is one guest boot: a kernel, an init, files and what to run.
type Machine struct {
	// Kernel is the kernel to boot; Vmlinuz must be set.
	Kernel debian.Kernel
	// Init is the host path of the static guest init binary.
	Init string
	// Files are packed into the initramfs besides the init.
	Files []File
	// Config tells the init what to run. Its Release is set from Kernel.
	Config vminit.Config
	// Timeout bounds the boot on the host; QEMU is killed at the
	// deadline. 0 means Config.TimeoutSec plus a minute.
	Timeout time.Duration
	// Console, if not nil, receives the console output as it arrives.
	Console io.Writer
	// MemoryMB is the guest memory; 0 means 512, or 4096 with a
	// Userland.
	MemoryMB int
	// Userland, if not empty, is the host path of an uncompressed newc
	// cpio archive holding a root file system (package vm/userland
	// builds Debian's). It goes in front of the initramfs, so the kernel
	// unpacks it first and the init, the Files and the configuration on
	// top of it.
	Userland string
	// InstructionClock runs QEMU with -icount shift=0,sleep=off: the
	// guest's clock advances one nanosecond per emulated instruction
	// instead of with the host's time, so what the guest measures (a
	// rate, a duration) depends on the instructions it ran, not on how
	// busy the host is. Only TCG supports it; it is for benchmarks.
	InstructionClock bool
	// Args go on the kernel command line after "--"; the kernel passes
	// them to the init, which appends them to every step's arguments.
	// They may not contain spaces or quotes.
	Args []string
}

// Result is what one boot showed.
type Result struct {
	Kernel debian.Kernel
	// Release and Filters come from the guest's BOOT marker: uname -r
	// and the io_uring BPF filter probe ("yes", "no", "error:...").
	Release, Filters string
	// Steps holds one entry per step that began.
	Steps []StepResult
	// Done is true if the guest finished every step and said so.
	Done bool
	// Problems lists what went wrong outside the steps' own results:
	// QEMU failures, timeouts, init errors, missing markers.
	Problems []string
	// Duration is the wall time of the boot.
	Duration time.Duration
	// Console is everything the guest printed, with \r removed.
	Console []byte
}

// StepResult is one step's outcome.
type StepResult struct {
	Name string
	// Exit is the exit status; -1 if killed or never finished.
	Exit int
	// Ended is true if the END marker was seen.
	Ended    bool
	TimedOut bool
	// Output is what the step printed (between its markers).
	Output []byte
	// Tests lists the go test -v results found in Output, in order.
	Tests []TestResult
	// Figures are the figures the tests reported (vmtest.Figure), in
	// order.
	Figures []Figure
}

// Figure is one count a test reported from inside the guest.
type Figure struct {
	Name  string
	Value int
}

// parseFigure reads a figure from a line of test output: the marker, then
// "name=N".
func parseFigure(line string) (Figure, bool) {
	_, rest, ok := strings.Cut(line, vminit.FigureMarker+" ")
	if !ok {
		return Figure{}, false
	}
	i := strings.LastIndexByte(rest, '=')
	if i <= 0 {
		return Figure{}, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest[i+1:]))
	if err != nil {
		return Figure{}, false
	}
	return Figure{Name: strings.TrimSpace(rest[:i]), Value: n}, true
}

// TestResult is one "--- PASS/FAIL/SKIP: Name" line.
type TestResult struct {
	Name   string // e.g. "TestX/sub"
	Status string // "PASS", "FAIL" or "SKIP"
}

// testLine matches the result lines of go test -v, subtests indented.
var testLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)

// ParseConsole parses a guest's console output into r's Release, Filters,
// Steps and Done.
func ParseConsole(r *Result, console []byte) {
	var cur *StepResult
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(console))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m, ok := vminit.ParseMarker(line); ok {
			switch m.Kind {
			case vminit.KindBoot:
				r.Release, r.Filters = m.Release, m.Filters
			case vminit.KindBegin:
				r.Steps = append(r.Steps, StepResult{Name: m.Name, Exit: -1})
				cur = &r.Steps[len(r.Steps)-1]
				out.Reset()
			case vminit.KindEnd:
				if cur != nil && cur.Name == m.Name {
					cur.Exit, cur.Ended, cur.TimedOut = m.Exit, true, m.TimedOut
					cur.Output = append([]byte(nil), out.Bytes()...)
					cur.Tests = append(cur.Tests, timedOutTests(cur.Output)...)
					if cur.TimedOut {
						r.Problems = append(r.Problems, fmt.Sprintf("%s: timed out in the guest", m.Name))
					}
					cur = nil
				}
			case vminit.KindDone:
				r.Done = true
			case vminit.KindTimeout:
				r.Problems = append(r.Problems, "guest deadline passed")
			case vminit.KindError:
				r.Problems = append(r.Problems, "guest init: "+m.Name)
			}
			continue
		}
		if cur == nil {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
		if m := testLine.FindStringSubmatch(line); m != nil {
			cur.Tests = append(cur.Tests, TestResult{Name: m[2], Status: m[1]})
		}
		if f, ok := parseFigure(line); ok {
			cur.Figures = append(cur.Figures, f)
		}
	}
	if cur != nil {
		// The step never ended: keep what it printed.
		cur.Output = append([]byte(nil), out.Bytes()...)
		cur.Tests = append(cur.Tests, timedOutTests(cur.Output)...)
		r.Problems = append(r.Problems, fmt.Sprintf("%s: no END marker (the guest stopped during the step)", cur.Name))
	}
}

// timedOutTests finds the tests go test names when its -test.timeout
// fires ("panic: test timed out after D", then "running tests:" and one
// "\t\tName (D)" line per test) and returns them as failures, since
// they never print a FAIL line.
func timedOutTests(output []byte) []TestResult {
	var res []TestResult
	lines := strings.Split(string(output), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "panic: test timed out after ") {
			continue
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "running tests:" {
			continue
		}
		for _, l := range lines[i+2:] {
			name, rest, ok := strings.Cut(strings.TrimSpace(l), " (")
			if !ok || !strings.HasPrefix(l, "\t\t") || !strings.HasSuffix(rest, ")") || name == "" {
				break
			}
			res = append(res, TestResult{Name: name, Status: "FAIL"})
		}
		break
	}
	return res
}

// accel returns QEMU's accelerator choice.
func accel() string {
	if a := os.Getenv(EnvAccel); a != "" {
		return a
	}
	return "tcg"
}

// Initrd writes m's initramfs (gzip'd newc cpio) to w.
func (m *Machine) Initrd(w io.Writer) error {
	cfg := m.Config
	cfg.Release = m.Kernel.Release
	cj, err := cfg.Encode()
	if err != nil {
		return err
	}
	dirs := []string{"dev", "proc", "sys", "tmp", "bin"}
	if m.Userland != "" {
		u, err := os.Open(m.Userland)
		if err != nil {
			return fmt.Errorf("userland: %w", err)
		}
		_, err = io.Copy(w, u)
		u.Close()
		if err != nil {
			return fmt.Errorf("userland: %w", err)
		}
		// Debian's /bin is a symbolic link to usr/bin; an entry "bin"
		// of another type would make the kernel replace it.
		dirs = dirs[:4]
	}
	a := initramfs.NewGzipWriter(w)
	for _, d := range dirs {
		if err := a.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := a.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	files := append([]File{{Path: vminit.InitPath, HostPath: m.Init, Mode: 0o755}}, m.Files...)
	files = append(files, File{Path: vminit.ConfigPath, Data: cj, Mode: 0o644})
	for _, f := range files {
		if err := addFile(a.Writer, f); err != nil {
			return err
		}
	}
	return a.Close()
}

func addFile(a *initramfs.Writer, f File) error {
	mode := f.Mode
	if mode == 0 {
		mode = 0o755
	}
	if f.HostPath == "" {
		return a.Bytes(f.Path, mode, f.Data)
	}
	h, err := os.Open(f.HostPath)
	if err != nil {
		return err
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return err
	}
	return a.File(f.Path, mode, st.Size(), h)
}

// Boot boots m and returns what it showed. The error is for failures to
// start at all (no QEMU, no kernel image); a guest that crashes, hangs or
// fails is reported in Result.Problems.
func (m *Machine) Boot(ctx context.Context, workDir string) (*Result, error) {
	r := &Result{Kernel: m.Kernel}
	cmdline := "console=ttyS0 quiet panic=-1"
	if len(m.Args) > 0 {
		for _, a := range m.Args {
			if a == "" || strings.ContainsAny(a, " \t\n\"'") {
				return r, fmt.Errorf("kernel command line argument %q: empty, or has a space or quote", a)
			}
		}
		cmdline += " -- " + strings.Join(m.Args, " ")
	}
	if m.Kernel.Vmlinuz == "" {
		return r, fmt.Errorf("kernel %s: no image (fetch it first)", m.Kernel.Release)
	}
	if _, err := exec.LookPath(QEMU); err != nil {
		return r, fmt.Errorf("%s not found: install it (Debian: apt-get install qemu-system-x86)", QEMU)
	}
	initrd, err := os.CreateTemp(workDir, "initrd-*.cpio.gz")
	if err != nil {
		return r, err
	}
	defer os.Remove(initrd.Name())
	if err := m.Initrd(initrd); err != nil {
		initrd.Close()
		return r, fmt.Errorf("pack initramfs: %w", err)
	}
	if err := initrd.Close(); err != nil {
		return r, err
	}

	timeout := m.Timeout
	if timeout == 0 {
		timeout = time.Duration(m.Config.TimeoutSec)*time.Second + time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mem := m.MemoryMB
	if mem == 0 {
		mem = 512
		if m.Userland != "" {
			mem = 4096
		}
	}
	args := []string{
		"-machine", "q35,accel=" + accel(),
		"-cpu", "max",
		"-m", fmt.Sprint(mem),
		"-smp", "1",
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", m.Kernel.Vmlinuz,
		"-initrd", initrd.Name(),
		"-append", cmdline,
	}
	if m.InstructionClock {
		args = append(args, "-icount", "shift=0,sleep=off")
	}
	cmd := exec.CommandContext(ctx, QEMU, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = qemuProcAttr()
	var console syncBuffer
	var sink io.Writer = &console
	if m.Console != nil {
		sink = io.MultiWriter(&console, m.Console)
	}
	cmd.Stdout = sink
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	r.Duration = time.Since(start)
	raw := bytes.ReplaceAll(console.Bytes(), []byte("\r"), nil)
	r.Console = raw
	ParseConsole(r, raw)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.Problems = append(r.Problems, fmt.Sprintf("QEMU killed after %v (host deadline)", timeout))
	case err != nil:
		r.Problems = append(r.Problems, fmt.Sprintf("QEMU: %v: %s", err, strings.TrimSpace(stderr.String())))
	}
	if r.Release == "" {
		r.Problems = append(r.Problems, "the guest init never started (no BOOT marker); see the console output")
	} else if m.Kernel.Release != "" && r.Release != m.Kernel.Release {
		r.Problems = append(r.Problems, fmt.Sprintf("booted %s, expected %s", r.Release, m.Kernel.Release))
	}
	if r.Release != "" && !r.Done {
		r.Problems = append(r.Problems, "the guest did not finish (no DONE marker)")
	}
	return r, nil
}

// syncBuffer is a bytes.Buffer safe for QEMU's output copier and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// BuildInit builds the guest init statically into dir and returns its
// path. srcDir is the module root.
func BuildInit(ctx context.Context, srcDir, dir string) (string, error) {
	out := filepath.Join(dir, "init")
	if err := goBuild(ctx, srcDir, "build", "-o", out, "./internal/vminit/pid1"); err != nil {
		return "", err
	}
	return out, nil
}

// goBuild runs the go command with CGO_ENABLED=0 for amd64 Linux.
func goBuild(ctx context.Context, srcDir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// BuildStatic builds the main package pkg (a pattern relative to the
// module root srcDir, such as "./cmd/ringfence") as a static amd64 Linux
// binary at out, for the guest.
func BuildStatic(ctx context.Context, srcDir, out, pkg string) error {
	return goBuild(ctx, srcDir, "build", "-o", out, pkg)
}
