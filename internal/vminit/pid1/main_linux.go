// Command pid1 is the init program of ringfence's test VMs. The host harness
// (package vm) builds it statically (CGO_ENABLED=0) and packs it as /init in
// an initramfs together with the programs to run and a configuration
// (see package vminit).
//
// Running as PID 1 it mounts /proc, /sys, /dev, /tmp, tracefs, /dev/shm,
// /dev/pts, /run and the cgroup2 hierarchy, brings up the
// loopback interface, probes whether the
// kernel has io_uring BPF filters, runs each configured step with its output
// on the console between BEGIN and END markers, and powers the machine off.
// It never waits forever: every step and the whole run have deadlines, and
// any failure of its own powers off too. Arguments after "--" on the kernel
// command line are appended to every step's arguments.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/vminit"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pid1: this is the init of ringfence's test VMs; it only runs as PID 1 inside one")
		os.Exit(2)
	}
	defer func() {
		if r := recover(); r != nil {
			say(vminit.Marker{Kind: vminit.KindError, Name: fmt.Sprintf("panic: %v", r)})
		}
		powerOff()
	}()
	if err := run(os.Args[1:]); err != nil {
		say(vminit.Marker{Kind: vminit.KindError, Name: oneLine(err.Error())})
	}
}

// say prints a marker on its own line on the console.
func say(m vminit.Marker) {
	fmt.Fprintf(os.Stdout, "\n%s\n", m)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func run(extra []string) error {
	if err := setup(); err != nil {
		return err
	}
	b, err := os.ReadFile(vminit.ConfigPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := vminit.DecodeConfig(b)
	if err != nil {
		return err
	}
	if cfg.TimeoutSec > 0 {
		go func() {
			time.Sleep(time.Duration(cfg.TimeoutSec) * time.Second)
			say(vminit.Marker{Kind: vminit.KindTimeout})
			powerOff()
		}()
	}
	var uts unix.Utsname
	release := "unknown"
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	say(vminit.Marker{Kind: vminit.KindBoot, Release: release, Filters: probeFilters()})

	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp",
		"TMPDIR=/tmp",
		vminit.EnvVM + "=1",
		vminit.EnvRelease + "=" + cfg.Release,
	}
	env = append(env, cfg.Env...)
	for _, st := range cfg.Steps {
		runStep(st, extra, env)
	}
	say(vminit.Marker{Kind: vminit.KindDone})
	return nil
}

// setup mounts the pseudo file systems and makes sure the standard streams
// reach the console.
func setup() error {
	// /dev/shm (POSIX shared memory: PostgreSQL), /dev/pts, /run and
	// the cgroup2 hierarchy (runc, crun, Podman) are what a Debian
	// userland expects of its init.
	mounts := []struct{ fstype, dir, data string }{
		{"proc", "/proc", ""},
		{"sysfs", "/sys", ""},
		{"devtmpfs", "/dev", ""},
		{"tmpfs", "/tmp", "mode=1777"},
		{"tmpfs", "/dev/shm", "mode=1777"},
		{"devpts", "/dev/pts", "ptmxmode=0666,mode=0620"},
		{"tmpfs", "/run", "mode=0755"},
		{"cgroup2", "/sys/fs/cgroup", ""},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dir, err)
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, 0, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	// The kernel opens /dev/console for init only if the node existed in
	// the initramfs; make sure the streams point at it either way.
	if _, err := unix.FcntlInt(1, unix.F_GETFD, 0); err != nil {
		fd, err := unix.Open("/dev/console", unix.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open /dev/console: %w", err)
		}
		for i := 0; i < 3; i++ {
			if err := unix.Dup2(fd, i); err != nil {
				return fmt.Errorf("dup2 console: %w", err)
			}
		}
	}
	// tracefs, for the tests of "ringfence record" and the denial log. A
	// kernel without it still boots the other tests.
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		fmt.Fprintf(os.Stderr, "init: mount tracefs on /sys/kernel/tracing: %v (tests that trace will say so)\n", err)
	}
	return loopbackUp()
}

// loopbackUp brings up the loopback interface, so tests can listen on and
// connect to 127.0.0.1 and ::1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// probeFilters reports whether the kernel accepts an io_uring BPF filter
// (an allow-all filter for NOP on a fresh ring): "yes", "no" (EINVAL: the
// register opcode is unknown), or "error:ERRNO" for anything else.
func probeFilters() string {
	var params [120]byte // struct io_uring_params
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if e != 0 {
		return "error:io_uring_setup:" + unix.ErrnoName(e)
	}
	defer unix.Close(int(fd))
	prog := cbpf.Encode([]cbpf.Instruction{cbpf.Ret(1)}, binary.NativeEndian)
	f := abi.Filter{Opcode: uint32(abi.OpNop), Len: 1, Ptr: uint64(uintptr(unsafe.Pointer(&prog[0])))}
	arg := f.EncodeBPF(binary.NativeEndian)
	_, _, e = unix.Syscall6(unix.SYS_IO_URING_REGISTER, fd, abi.RegisterBPFFilter, uintptr(unsafe.Pointer(&arg[0])), 1, 0, 0)
	runtime.KeepAlive(prog)
	switch e {
	case 0:
		return "yes"
	case unix.EINVAL:
		return "no"
	}
	return "error:" + unix.ErrnoName(e)
}

// runStep runs one step with its output on the console, between markers.
func runStep(st vminit.Step, extra, env []string) {
	say(vminit.Marker{Kind: vminit.KindBegin, Name: st.Name})
	end := vminit.Marker{Kind: vminit.KindEnd, Name: st.Name, Exit: -1}
	defer func() { say(end) }()

	cmd := exec.Command(st.Path, append(append([]string{}, st.Args...), extra...)...)
	cmd.Dir = st.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = append(append([]string{}, env...), st.Env...)
	cmd.Stdin = nil
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Printf("pid1: start %s: %v\n", st.Path, err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if st.TimeoutSec > 0 {
		timeout = time.After(time.Duration(st.TimeoutSec) * time.Second)
	}
	select {
	case <-done:
	case <-timeout:
		end.TimedOut = true
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		<-done
	}
	end.Exit = cmd.ProcessState.ExitCode()
}

// powerOff flushes the file systems and turns the machine off. The host
// sees QEMU exit.
func powerOff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reboot only returns on failure; exiting PID 1 panics the kernel,
	// and panic=-1 with qemu -no-reboot ends the VM as well.
	os.Exit(1)
}
