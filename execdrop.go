package ringfence

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
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
var ErrExecDropsFilters = errors.New(`this kernel drops io_uring task filters at execve once a thread has used io_uring, so a confined program could shed its policy by creating a ring and executing any program (the kernel lacks the fix "` + KernelFixExecDrop + `", in Linux 7.1 and some distributions' 7.0 builds)`)

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
}

// ExecKeepsFilters finds out, by behaviour, whether the running kernel
// keeps a task's io_uring filters across execve after the task has used
// io_uring. In a throwaway child (this program re-executed) it registers
// a task filter that denies NOP, creates and uses a ring on that thread,
// executes itself again and submits a NOP: denied means the filter
// survived. It changes nothing in the calling process.
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
// NOP-denying task filter, uses io_uring on the same thread and executes
// stage "look", which reports whether NOP is still denied.
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
		if err := kernel.RegisterTaskFilter(abi.OpNop, []cbpf.Instruction{cbpf.Ret(0)}, 0, 0); err != nil {
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
		if c.Res != -int32(syscall.EACCES) {
			return fail(fmt.Errorf("NOP under a NOP-denying task filter gave %d, want -EACCES", c.Res))
		}
		self, err := os.Executable()
		if err != nil {
			return fail(err)
		}
		return fail(kernel.Exec(self, []string{execProbeArgv0, "look"}, os.Environ()))
	case "look":
		r, err := kernel.NewRing(kernel.Params{Entries: 1})
		if err != nil {
			return fail(err)
		}
		defer r.Close()
		c, err := r.Do(kernel.SQE{Opcode: abi.OpNop})
		switch {
		case err != nil:
			return fail(err)
		case c.Res == -int32(syscall.EACCES):
			return execProbeKept
		case c.Res == 0:
			return execProbeDropped
		}
		return fail(fmt.Errorf("NOP gave %d after execve", c.Res))
	}
	return fail(errors.New("unknown stage"))
}
