package escape

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// confineSelf applies a built-in profile to the calling thread with the
// library, as a runtime that calls ApplyToTask before starting its
// workload does. It leaves the goroutine locked to its thread. The roles
// that use it do not exec, so a kernel that drops filters at execve is
// accepted.
func confineSelf(profile string) error {
	p, err := ringfence.Profile(profile)
	if err != nil {
		return err
	}
	v, err := kernel.Version()
	if err != nil {
		return err
	}
	plan, err := ringfence.Compile(p, v)
	if err != nil {
		return err
	}
	return ringfence.ApplyToTask(plan, ringfence.ApplyOptions{AllowExecDrop: true})
}

// sqPollThreads counts the process's SQPOLL threads (iou-sqp-TID).
func sqPollThreads() (int, error) {
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue // the thread exited meanwhile
		}
		if strings.HasPrefix(string(b), "iou-sqp-") {
			n++
		}
	}
	return n, nil
}

// roleAttachWQ creates an unfiltered ring (an SQPOLL one with args[0]
// "sqpoll", else "plain"), then, with args[1] "confined", applies
// deny-all to its own thread, and creates a second ring with
// IORING_SETUP_ATTACH_WQ on the first: it shares the first ring's async
// backend and, with SQPOLL, its poll thread, which the thread made before
// it was confined. It prints "attached", the number of SQPOLL threads
// (one when the poll thread is shared) and the first ring's NOP result,
// then submits requests on the attached ring: deny-all must refuse them.
func roleAttachWQ(args []string) int {
	if len(args) != 2 {
		return brokenf("attach-wq: want sqpoll|plain confined|unconfined, got %q", args)
	}
	runtime.LockOSThread()
	var flags uint32
	if args[0] == "sqpoll" {
		flags = kernel.SetupSQPoll
	}
	first, err := kernel.NewRing(kernel.Params{Entries: 4, Flags: flags, SQThreadIdle: 1000})
	if err != nil {
		return brokenf("first ring: %v", err)
	}
	defer first.Close()
	if args[1] == "confined" {
		if err := confineSelf("deny-all"); err != nil {
			return brokenf("confine: %v", err)
		}
	}
	attached, err := kernel.NewRing(kernel.Params{Entries: 4, Flags: flags | kernel.SetupAttachWQ, WQFD: first.FD()})
	if err != nil {
		return brokenf("attached ring: %v", err)
	}
	defer attached.Close()
	fmt.Println("attached")
	if flags != 0 {
		n, err := sqPollThreads()
		if err != nil {
			return brokenf("count SQPOLL threads: %v", err)
		}
		fmt.Printf("sqpoll threads %d\n", n)
	}
	c, err := first.Do(kernel.SQE{Opcode: abi.OpNop})
	if err != nil {
		return brokenf("NOP on the first ring: %v", err)
	}
	fmt.Printf("first ring NOP %d\n", c.Res)
	return requestsOn(attached)
}

// roleAttachWQLaunch is a launcher that holds a ring, marks it
// inheritable and execs "<self> role attach-wq-fd FD", or with ARGS
// ("ringfence run ... --") "<self> ARGS <self> role attach-wq-fd FD",
// where the ring meets run's --ring-fds handling.
func roleAttachWQLaunch(args []string) int {
	self, r, err := launcherRing()
	if err != nil {
		return brokenf("%v", err)
	}
	argv := []string{self}
	if len(args) > 0 { // a command line that ends in "--" and runs self
		argv = append(append(argv, args...), self)
	}
	argv = append(argv, "role", "attach-wq-fd", strconv.Itoa(r.FD()))
	return brokenf("exec: %v", kernel.Exec(self, argv, os.Environ()))
}

// roleAttachWQFD makes a ring with IORING_SETUP_ATTACH_WQ on descriptor
// args[0], a ring its launcher made, and submits requests on it. A
// refused attach is held; requests that run escaped.
func roleAttachWQFD(args []string) int {
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		return brokenf("%v", err)
	}
	r, err := kernel.NewRing(kernel.Params{Entries: 4, Flags: kernel.SetupAttachWQ, WQFD: fd})
	if err != nil {
		fmt.Printf("attach to descriptor %d: %v\n", fd, err)
		return held
	}
	defer r.Close()
	fmt.Printf("attached to descriptor %d\n", fd)
	return requestsOn(r)
}

// roleProcReopen opens /proc/PID/fd/RING (args[0] PID, "parent" for its
// parent; args[1] RING) with O_RDWR, O_RDONLY and O_PATH, and uses what it
// gets as an io_uring (REGISTER_PROBE, and as the backend of a new ring
// with IORING_SETUP_ATTACH_WQ). The process's descriptor args[2], a pipe,
// must reopen the same way, or the attack could not reach the process's
// descriptors at all (then broken).
func roleProcReopen(args []string) int {
	if len(args) != 3 {
		return brokenf("proc-reopen: want PID|parent RING-FD PIPE-FD, got %q", args)
	}
	pid := args[0]
	if pid == "parent" {
		pid = strconv.Itoa(os.Getppid())
	}
	dir := "/proc/" + pid + "/fd/"
	pipe, err := os.OpenFile(dir+args[2], os.O_RDWR, 0)
	if err != nil {
		return brokenf("reopen the pipe %s%s: %v", dir, args[2], err)
	}
	pipe.Close()
	fmt.Printf("reopened the pipe %s%s\n", dir, args[2])
	if target, err := os.Readlink(dir + args[1]); err != nil || target != "anon_inode:[io_uring]" {
		return brokenf("%s%s is %q (%v), not an io_uring", dir, args[1], target, err)
	}
	code := held
	for _, how := range []struct {
		name  string
		flags int
	}{{"O_RDWR", unix.O_RDWR}, {"O_RDONLY", unix.O_RDONLY}, {"O_PATH", unix.O_PATH}} {
		fd, err := unix.Open(dir+args[1], how.flags|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("open %s: %v\n", how.name, err)
			continue
		}
		var probe [16 + 8*4]byte
		e := register(fd, abi.RegisterProbe, unsafe.Pointer(&probe[0]), 4)
		fmt.Printf("open %s: descriptor %d, REGISTER_PROBE errno %d\n", how.name, fd, int(e))
		if e == 0 {
			code = escapedf("%s%s reopened with %s is a working io_uring", dir, args[1], how.name)
		}
		if r, err := kernel.NewRing(kernel.Params{Entries: 4, Flags: kernel.SetupAttachWQ, WQFD: fd}); err == nil {
			r.Close()
			code = escapedf("a ring attached to %s%s reopened with %s", dir, args[1], how.name)
		} else {
			fmt.Printf("attach to it: %v\n", err)
		}
		unix.Close(fd)
	}
	return code
}

// nobody is the unprivileged user and group the setuid roles drop to.
const nobody = 65534

// roleDropExec drops to user and group nobody, then executes the
// setuid-root program args[0] as "role setuid-report". It uses no
// io_uring before the exec (7.0.13 would drop its filters at execve).
func roleDropExec(args []string) int {
	if len(args) != 1 {
		return brokenf("drop-exec: want SETUID-PROGRAM, got %q", args)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return brokenf("setgroups: %v", err)
	}
	if err := syscall.Setresgid(nobody, nobody, nobody); err != nil {
		return brokenf("setresgid: %v", err)
	}
	if err := syscall.Setresuid(nobody, nobody, nobody); err != nil {
		return brokenf("setresuid: %v", err)
	}
	if os.Geteuid() != nobody || os.Getuid() != nobody {
		return brokenf("still uid %d euid %d after dropping", os.Getuid(), os.Geteuid())
	}
	return brokenf("exec: %v", kernel.Exec(args[0], []string{args[0], "role", "setuid-report"}, os.Environ()))
}

// roleSetuidReport runs as a setuid-root program started by an
// unprivileged user: it prints its user ids, fails if it is root, then
// tries to loosen the policy and submits requests (restrict-again).
func roleSetuidReport([]string) int {
	fmt.Printf("uid %d euid %d\n", os.Getuid(), os.Geteuid())
	if os.Geteuid() == 0 {
		// The kernel granted root: the program could, for one, ptrace
		// any unconfined process.
		return escapedf("the setuid-root program runs as root (euid 0)")
	}
	if err := syscall.Setresuid(0, 0, 0); err == nil {
		return escapedf("setresuid(0) worked")
	}
	return roleRestrictAgain(nil)
}
