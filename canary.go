package ringfence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// CanaryUserData is the user_data of the one request ringfence's canary
// filter refuses: a NOP carrying it. ExecUnder and ApplyToTask register the
// canary filter after a plan's own filters, and ringfence submits that NOP
// to find out, by behaviour, that the task's filters are in place: the
// kernel writes a request's result to the completion queue, where no
// seccomp filter can forge it, while the answer of a system call (such as
// kernel.TaskRestricted's) can be forged by a seccomp filter the launcher
// installed. Denial logs leave this request out.
const CanaryUserData = 0x72696e6766656e63 // "ringfenc" in ASCII

// canaryPolicy refuses exactly the canary request.
const canaryPolicy = `version: 1
default: allow
rules:
  - ops: [NOP]
    action: deny
    when:
      user_data: 0x72696e6766656e63
`

// canaryRegistration compiles the canary filter for kernel v.
func canaryRegistration(v abi.Version) (compile.Registration, error) {
	p, err := ParsePolicy([]byte(canaryPolicy), "ringfence canary")
	if err != nil {
		return compile.Registration{}, err
	}
	plan, err := Compile(p, v)
	if err != nil {
		return compile.Registration{}, err
	}
	if len(plan.Registrations) != 1 || plan.Registrations[0].Op != abi.OpNop || plan.Registrations[0].Flags != 0 {
		return compile.Registration{}, fmt.Errorf("the canary policy compiled to %d registrations, want one NOP filter", len(plan.Registrations))
	}
	return plan.Registrations[0], nil
}

// IsCanary reports whether a request is the canary request.
func IsCanary(r policy.Request) bool {
	return r.Op == abi.OpNop && r.UserData == CanaryUserData
}

// ErrFiltersMissing means the canary request ran: the task does not carry
// the filters ringfence registered (a launcher's seccomp filter faked
// their registration, or execve dropped them).
var ErrFiltersMissing = errors.New("the io_uring filters ringfence registered are not in place: a request they refuse ran")

// canaryRefused creates a ring on the calling thread and submits the
// canary request: true when it was refused (EACCES), false when it ran.
func canaryRefused() (bool, error) {
	r, err := kernel.NewRing(kernel.Params{Entries: 1})
	if err != nil {
		return false, err
	}
	defer r.Close()
	c, err := r.Do(kernel.SQE{Opcode: abi.OpNop, UserData: CanaryUserData})
	switch {
	case err != nil:
		return false, err
	case c.Res == -int32(syscall.EACCES):
		return true, nil
	case c.Res == 0:
		return false, nil
	}
	return false, fmt.Errorf("the canary NOP completed with %d, want %d (refused) or 0 (ran)", c.Res, -int32(syscall.EACCES))
}

// canaryProbeArgv0 is the argv[0] with which VerifyFiltered re-executes
// the running program as its throwaway child; the package's init
// recognises it.
const canaryProbeArgv0 = "ringfence-canary-probe"

// Exit statuses of the canary child.
const (
	canaryRefusedStatus = 0
	canaryRanStatus     = 10
	canaryFailedStatus  = 11
)

func canaryProbe() int {
	refused, err := canaryRefused()
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %v\n", canaryProbeArgv0, err)
		return canaryFailedStatus
	case refused:
		return canaryRefusedStatus
	}
	return canaryRanStatus
}

// canaryProbeTimeout bounds the canary child: a launcher's seccomp filter
// that fakes io_uring_enter could keep it waiting.
const canaryProbeTimeout = 2 * time.Minute

// VerifyFiltered finds out, by behaviour, whether the calling thread
// carries ringfence's canary filter (and so the filters registered before
// it, which a seccomp filter cannot tell apart from it): a child process
// (this program re-executed, which inherits the thread's filters) submits
// the canary request, which must be refused. The calling thread itself
// creates no ring (Linux 7.0 drops the filters of a thread that used
// io_uring at execve). It returns nil when the filters are in place, an
// error wrapping ErrFiltersMissing when they are not, and another error
// when it cannot tell: treat that as unsafe.
func VerifyFiltered() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("check that the io_uring filters are in place: cannot find this program to re-execute: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), canaryProbeTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self)
	cmd.Args, cmd.Env, cmd.Stderr = []string{canaryProbeArgv0}, os.Environ(), &stderr
	err = cmd.Run()
	switch {
	case err == nil:
		return nil
	case cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == canaryRanStatus:
		return ErrFiltersMissing
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("check that the io_uring filters are in place: %s", msg)
}
