package escape

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// Exit statuses of attacker roles.
const (
	held    = 0 // every attempt was refused
	escaped = 1 // the attack worked: the message says how
	broken  = 2 // the attack could not be tried
)

// roles are the parts the re-executed test binary plays ("role NAME ARGS").
func roles() map[string]func(args []string) int {
	return map[string]func([]string) int{
		"requests":         roleRequests,
		"exec-drop":        roleExecDrop,
		"sync-cancel":      roleSyncCancel,
		"send-msg-ring":    roleSendMsgRing,
		"ring-fd":          roleRingFD,
		"pidfd-getfd":      rolePidfdGetfd,
		"victim":           roleVictim,
		"fake-proc-launch": roleFakeProcLaunch,
		"restrict-again":   roleRestrictAgain,
		"register-ops":     roleRegisterOps,
		"namespaces":       roleNamespaces,
		"attach-wq":        roleAttachWQ,
		"attach-wq-launch": roleAttachWQLaunch,
		"attach-wq-fd":     roleAttachWQFD,
		"proc-reopen":      roleProcReopen,
		"drop-exec":        roleDropExec,
		"setuid-report":    roleSetuidReport,
		"forge-launch":     roleForgeLaunch,
		"forge-works":      roleForgeWorks,
	}
}

func runRole(name string, args []string) int {
	f, ok := roles()[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "escape: unknown role %q\n", name)
		return broken
	}
	return f(args)
}

func brokenf(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "BROKEN: "+format+"\n", a...)
	return broken
}

func escapedf(format string, a ...any) int {
	fmt.Printf("ESCAPED: "+format+"\n", a...)
	return escaped
}

// roleRequests submits a NOP and AF_PACKET and AF_NETLINK socket
// requests on a new ring: under deny-all all must fail with EACCES.
func roleRequests([]string) int {
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return brokenf("%v", err)
	}
	defer r.Close()
	return requestsOn(r)
}

// requestsOn submits roleRequests' requests on r.
func requestsOn(r *kernel.Ring) int {
	reqs := map[string]kernel.Request{
		"NOP":               {Op: abi.OpNop},
		"SOCKET AF_PACKET":  {Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: unix.AF_PACKET, Type: unix.SOCK_RAW}},
		"SOCKET AF_NETLINK": {Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: unix.AF_NETLINK, Type: unix.SOCK_RAW}},
	}
	code := held
	for name, q := range reqs {
		c, err := r.Do(q.SQE())
		if err != nil {
			return brokenf("%s: %v", name, err)
		}
		if c.Res >= 0 && q.Op == abi.OpSocket {
			unix.Close(int(c.Res))
		}
		if c.Res != -int32(unix.EACCES) {
			code = escapedf("%s ran (res %d)", name, c.Res)
		}
	}
	return code
}

// roleExecDrop uses io_uring on its thread, then executes "requests": on a
// kernel that drops task filters at execve, the requests run.
func roleExecDrop([]string) int {
	runtime.LockOSThread()
	r, err := kernel.NewRing(kernel.Params{Entries: 1})
	if err != nil {
		return brokenf("%v", err)
	}
	r.Close()
	self, err := os.Executable()
	if err != nil {
		return brokenf("%v", err)
	}
	return brokenf("exec: %v", kernel.Exec(self, []string{self, "role", "requests"}, os.Environ()))
}

func register(fd, op int, arg unsafe.Pointer, nr int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
	return e
}

// roleSyncCancel calls IORING_REGISTER_SYNC_CANCEL on its own ring: a
// policy without it in its register section must refuse it (EACCES)
// before the kernel looks for anything to cancel.
func roleSyncCancel([]string) int {
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return brokenf("%v", err)
	}
	defer r.Close()
	var arg [64]byte                              // struct io_uring_sync_cancel_reg: addr 0, fd 0, flags 0, timeout 0
	binary.NativeEndian.PutUint32(arg[12:], 1<<1) // IORING_ASYNC_CANCEL_ANY
	binary.NativeEndian.PutUint64(arg[16:], ^uint64(0))
	binary.NativeEndian.PutUint64(arg[24:], ^uint64(0))
	switch e := register(r.FD(), int(abi.RegOpSyncCancel), unsafe.Pointer(&arg[0]), 1); e {
	case unix.EACCES:
		return held
	default:
		return escapedf("REGISTER_SYNC_CANCEL reached the kernel's cancel code (errno %d %v)", int(e), e)
	}
}

// roleSendMsgRing posts a CQE to its own ring with a ring-less
// IORING_REGISTER_SEND_MSG_RING (fd -1): MSG_RING requests are denied, so
// the register form must be too.
func roleSendMsgRing(args []string) int {
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return brokenf("%v", err)
	}
	defer r.Close()
	op := int(abi.RegOpSendMsgRing)
	if len(args) > 0 && args[0] == "registered-flag" {
		op |= abi.RegisterUseRegisteredRing
	}
	sqe := make([]byte, 64)
	sqe[0] = byte(abi.OpMsgRing)
	binary.NativeEndian.PutUint32(sqe[4:], uint32(r.FD()))
	binary.NativeEndian.PutUint64(sqe[8:], 0x5eed) // off: user_data of the posted CQE
	binary.NativeEndian.PutUint32(sqe[24:], 7)     // len: its res
	e := register(-1, op, unsafe.Pointer(&sqe[0]), 1)
	if e == unix.EACCES {
		if cqes := r.Reap(); len(cqes) != 0 {
			return escapedf("refused with EACCES, but the ring got %+v", cqes)
		}
		return held
	}
	return escapedf("blind SEND_MSG_RING: errno %d (%v), CQEs %+v", int(e), e, r.Reap())
}

// roleRingFD reports whether descriptor args[0] is an open io_uring
// instance: an unfiltered ring that reached the confined program.
func roleRingFD(args []string) int {
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		return brokenf("%v", err)
	}
	var probe [16 + 8*4]byte
	switch e := register(fd, abi.RegisterProbe, unsafe.Pointer(&probe[0]), 4); e {
	case 0:
		return escapedf("descriptor %d is an io_uring created before the policy", fd)
	case unix.EBADF:
		return held
	default:
		return brokenf("descriptor %d: probe errno %d (%v)", fd, int(e), e)
	}
}

// rolePidfdGetfd takes descriptor args[1] of process args[0] with
// pidfd_getfd.
func rolePidfdGetfd(args []string) int {
	pid, _ := strconv.Atoi(args[0])
	fd, _ := strconv.Atoi(args[1])
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return brokenf("pidfd_open(%d): %v", pid, err)
	}
	got, err := unix.PidfdGetfd(pfd, fd, 0)
	switch {
	case err == nil:
		os.Args = []string{os.Args[0], "role", "ring-fd", strconv.Itoa(got)}
		if roleRingFD([]string{strconv.Itoa(got)}) == escaped {
			return escaped
		}
		return escapedf("pidfd_getfd took descriptor %d of process %d", fd, pid)
	case err == unix.EPERM:
		return held
	}
	return brokenf("pidfd_getfd: %v", err)
}

// roleVictim is an unconfined process holding a ring and a pipe: it prints
// the ring's descriptor and the pipe's read end's, and waits for its stdin to close.
func roleVictim([]string) int {
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return brokenf("%v", err)
	}
	p, w, err := os.Pipe()
	if err != nil {
		return brokenf("%v", err)
	}
	defer p.Close()
	defer w.Close()
	fmt.Printf("%d %d\n", r.FD(), p.Fd())
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// launcherRing is the start of the launcher roles: it locks the thread
// (which will exec), finds this program and makes an unfiltered ring that
// survives execve.
func launcherRing() (self string, r *kernel.Ring, err error) {
	runtime.LockOSThread()
	if self, err = os.Executable(); err != nil {
		return "", nil, err
	}
	if r, err = kernel.NewRing(kernel.Params{Entries: 4}); err != nil {
		return "", nil, err
	}
	return self, r, kernel.SetInheritable(r.FD())
}

// roleFakeProcLaunch is a launcher that holds an unconfined ring and hides
// it from "ringfence run --ring-fds=refuse" behind a tmpfs mounted over
// /proc in its own mount namespace (with a self/exe link so ringfence can
// still find itself, and an empty self/fd), then execs
// "ringfence run ARGS -- <self> role ring-fd FD".
func roleFakeProcLaunch(args []string) int {
	self, r, err := launcherRing()
	if err != nil {
		return brokenf("%v", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return brokenf("unshare: %v", err)
	}
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return brokenf("make / private: %v", err)
	}
	if err := unix.Mount("tmpfs", "/proc", "tmpfs", 0, ""); err != nil {
		return brokenf("mount tmpfs on /proc: %v", err)
	}
	if err := os.MkdirAll("/proc/self/fd", 0o755); err != nil {
		return brokenf("%v", err)
	}
	if err := os.Symlink(self, "/proc/self/exe"); err != nil {
		return brokenf("%v", err)
	}
	argv := append([]string{self, "ringfence", "run"}, args...)
	argv = append(argv, "--", self, "role", "ring-fd", strconv.Itoa(r.FD()))
	return brokenf("exec: %v", kernel.Exec(self, argv, os.Environ()))
}

// roleRestrictAgain tries to loosen the policy from inside: register a
// new task restriction set that allows every register operation, then an
// allow-all NOP filter, then clear no_new_privs.
func roleRestrictAgain([]string) int {
	runtime.LockOSThread()
	var rs []abi.Restriction
	for op := range abi.RegisterOpLast {
		rs = append(rs, abi.Restriction{Op: abi.RestrictRegisterOp, Value: uint8(op)})
	}
	for op := range abi.OpLast {
		rs = append(rs, abi.Restriction{Op: abi.RestrictSQEOp, Value: uint8(op)})
	}
	rs = append(rs, abi.Restriction{Op: abi.RestrictSQEFlagsAllowed, Value: abi.IOSQEValidFlagsMask})
	if err := kernel.RegisterTaskRestrictions(rs); err == nil {
		return escapedf("registered a second task restriction set")
	}
	if _, err := unix.PrctlRetInt(unix.PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil {
		if nnp, _ := kernel.NoNewPrivs(); !nnp {
			return escapedf("cleared no_new_privs")
		}
	}
	return roleRequests(nil)
}

// roleRegisterOps calls each register operation named in args on a new
// ring and prints "NAME errno" per line (0 for success). The arguments are
// such that an allowed call fails for its own reasons (EINVAL, EFAULT,
// ...) or does nothing harmful; only EACCES means refused by restrictions.
func roleRegisterOps(args []string) int {
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return brokenf("%v", err)
	}
	defer r.Close()
	for _, name := range args {
		op, ok := abi.LookupRegisterOp(name)
		if !ok {
			return brokenf("unknown register operation %q", name)
		}
		var arg [256]byte
		e := register(r.FD(), int(op), unsafe.Pointer(&arg[0]), 0)
		fmt.Printf("%s %d\n", op, int(e))
	}
	return held
}

// roleNamespaces starts "requests" in new user, network, mount and PID
// namespaces, root inside its user namespace: the task filters come along.
func roleNamespaces([]string) int {
	self, err := os.Executable()
	if err != nil {
		return brokenf("%v", err)
	}
	c := exec.Command(self, "role", "requests")
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	err = c.Run()
	if c.ProcessState == nil {
		return brokenf("start in new namespaces: %v", err)
	}
	return c.ProcessState.ExitCode()
}
