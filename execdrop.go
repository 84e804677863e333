package ringfence

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// KernelFixExecDrop is the title of the Linux commit that stops execve from
// dropping a task's io_uring filters and restrictions. Linux 7.1 has it, as
// do some distributions' 7.0 builds; Debian's 7.0.13 does not.
const KernelFixExecDrop = "io_uring: preserve task restrictions across exec"

// ErrExecDropsFilters means the running kernel drops a task's io_uring
// filters at execve once the task has used io_uring: a confined program
// sheds its policy by creating a ring (even one it closes) and executing
// any program. ExecKeepsFilters returns it, wrapped; ExecUnder and
// ApplyToTask refuse with it unless told otherwise.
var ErrExecDropsFilters = errors.New(`this kernel drops io_uring task filters at execve after the task used io_uring, so a confined program could shed its policy by creating a ring and executing any program (the kernel lacks the fix "` + KernelFixExecDrop + `", in Linux 7.1 and some distributions' 7.0 builds)`)

// execProbeArgv0 is the argv[0] with which ExecKeepsFilters re-executes the
// running program as its throwaway child; the package's init recognises it.
const execProbeArgv0 = "ringfence-exec-probe"

// Exit statuses of the probe child.
const (
	execProbeKept    = 0
	execProbeDropped = 10
	execProbeFailed  = 11
)

func init() {
	// The probe child: this process was started by ExecKeepsFilters
	// (from any program that links this package), not by a user.
	if len(os.Args) == 2 && os.Args[0] == execProbeArgv0 {
		os.Exit(execProbe(os.Args[1]))
	}
	if len(os.Args) == 1 && os.Args[0] == canaryProbeArgv0 {
		os.Exit(canaryProbe())
	}
}

// ExecKeepsFilters finds out, by behaviour, whether the running kernel
// keeps a task's io_uring filters across execve after the task has used
// io_uring. In a throwaway child (this program re-executed) it registers
// the canary filter (see CanaryUserData), creates a ring on that thread and
// runs a NOP on it, checks that the canary request is refused, executes
// itself again and submits the canary request once more: the filters
// survived if it is refused. It asks no system call whether the task is
// filtered (kernel.TaskRestricted), whose answer a launcher's seccomp
// filter could forge. It changes nothing in the calling process.
//
// It returns nil when the filters survive, an error wrapping
// ErrExecDropsFilters when they do not, and another error when it cannot
// tell (no filters at all, no /proc/self/exe, ...): treat that as unsafe.
func ExecKeepsFilters() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("check that io_uring filters survive execve: cannot find this program to re-execute: %w", err)
	}
	var stderr bytes.Buffer
	cmd := &exec.Cmd{Path: self, Args: []string{execProbeArgv0, "filter"}, Env: os.Environ(), Stderr: &stderr}
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	switch {
	case err == nil:
		return nil
	case code == execProbeDropped:
		rel, _ := kernel.Release()
		return fmt.Errorf("kernel %s: %w", rel, ErrExecDropsFilters)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("check that io_uring filters survive execve: %s", msg)
}

// execProbe is the child of ExecKeepsFilters: stage "filter" registers a
// task filter, uses io_uring on the same thread and executes stage "look",
// which reports whether the task still carries filters.
func execProbe(stage string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", execProbeArgv0, stage, err)
		return execProbeFailed
	}
	runtime.LockOSThread()
	switch stage {
	case "filter":
		if err := kernel.SetNoNewPrivs(); err != nil {
			return fail(err)
		}
		v, err := kernel.Version()
		if err != nil {
			return fail(err)
		}
		canary, err := canaryRegistration(v)
		if err != nil {
			return fail(err)
		}
		if err := kernel.RegisterTaskFilter(canary.Op, canary.Prog.Instructions(), canary.Flags, canary.PDUSize); err != nil {
			return fail(err)
		}
		r, err := kernel.NewRing(kernel.Params{Entries: 1})
		if err != nil {
			return fail(err)
		}
		c, err := r.Do(kernel.SQE{Opcode: abi.OpNop})
		r.Close()
		if err != nil {
			return fail(err)
		}
		if c.Res != 0 {
			return fail(fmt.Errorf("NOP gave %d, want 0", c.Res))
		}
		if refused, err := canaryRefused(); err != nil || !refused {
			return fail(fmt.Errorf("before execve the task should be filtered, but the canary request was not refused (%v): the filter's registration did not reach the kernel", err))
		}
		self, err := os.Executable()
		if err != nil {
			return fail(err)
		}
		return fail(kernel.Exec(self, []string{execProbeArgv0, "look"}, os.Environ()))
	case "look":
		refused, err := canaryRefused()
		switch {
		case err != nil:
			return fail(err)
		case refused:
			return execProbeKept
		}
		return execProbeDropped
	}
	return fail(errors.New("unknown stage"))
}
