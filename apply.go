package ringfence

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccomp"
)

// Kernel is what applying a plan needs from the operating system. Host
// returns the real one, built on package kernel; tests pass their own to
// make any step fail. Every method acts on the calling OS thread where the
// kernel makes the distinction (no_new_privs and task filters are per
// thread).
type Kernel interface {
	// Supported returns nil if the running kernel has io_uring BPF
	// filters on tasks, and an error saying why not otherwise.
	Supported() error
	// Version returns the running kernel's version.
	Version() (abi.Version, error)
	// SetNoNewPrivs sets no_new_privs on the calling thread.
	SetNoNewPrivs() error
	// ExecKeepsFilters returns nil if the kernel keeps a task's io_uring
	// filters across execve after the task used io_uring, an error
	// wrapping ErrExecDropsFilters if it drops them, and another error if
	// it cannot tell (see the function ExecKeepsFilters).
	ExecKeepsFilters() error
	// RegisterTaskRestrictions registers the io_uring task restriction
	// set rs on the calling thread.
	RegisterTaskRestrictions(rs []abi.Restriction) error
	// InstallSeccomp installs a seccomp filter on the calling thread.
	InstallSeccomp(prog []cbpf.Instruction) error
	// RegisterTaskFilter registers one filter on the calling thread.
	RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error
	// RegisterRingFilter registers one filter on the ring fd.
	RegisterRingFilter(fd int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error
	// RingFDs lists the open file descriptors of the process that are
	// io_uring instances, in increasing order.
	RingFDs() ([]int, error)
	// Close closes a file descriptor.
	Close(fd int) error
	// Exec replaces the process image (execve); it returns only on failure.
	Exec(path string, argv, envv []string) error
	// VerifyFiltered returns nil if the calling thread carries the
	// canary filter, found by behaviour, an error wrapping
	// ErrFiltersMissing if it does not, and another error if it cannot
	// tell (see the function VerifyFiltered).
	VerifyFiltered() error
}

// Step names one step of applying a policy, for errors.
type Step string

// The steps of ExecUnder, in the order they run.
const (
	StepSupport    Step = "check kernel support"
	StepExecDrop   Step = "check that io_uring filters survive execve"
	StepVersion    Step = "read kernel version"
	StepCompile    Step = "compile policy"
	StepNoNewPrivs Step = "set no_new_privs"
	StepRestrict   Step = "register io_uring task restrictions"
	StepRegister   Step = "register filter"
	StepDenyNew    Step = "deny opcodes newer than ringfence"
	StepSeccomp    Step = "install the companion seccomp filter"
	StepVerify     Step = "check that the io_uring filters are in place"
	StepRingFDs    Step = "handle inherited io_uring descriptors"
	StepExec       Step = "exec"
)

// StepError is the error of a failed step. Nothing after the failed step
// was done; in particular the program was not executed.
type StepError struct {
	Step Step
	// For StepRegister: which registration (0-based) of how many, and
	// its opcode.
	Index, Count int
	Op           abi.Opcode
	// Err is the underlying error.
	Err error
}

// Error says which step failed and why.
func (e *StepError) Error() string {
	if e.Step == StepRegister {
		return fmt.Sprintf("%s %d of %d (%s): %v", e.Step, e.Index+1, e.Count, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// RingFDMode says what to do with io_uring descriptors the process already
// has when a policy is applied. Rings created before the policy are not
// filtered, so they must not reach the confined program.
type RingFDMode int

// The ring descriptor modes. The zero value closes them.
const (
	CloseRingFDs  RingFDMode = iota // close them before exec
	RefuseRingFDs                   // fail, and do not run the program
)

// ParseRingFDMode parses "close" or "refuse".
func ParseRingFDMode(s string) (RingFDMode, error) {
	switch s {
	case "close":
		return CloseRingFDs, nil
	case "refuse":
		return RefuseRingFDs, nil
	}
	return 0, fmt.Errorf("bad ring-fds mode %q: want close or refuse", s)
}

// errInheritedRings is returned (wrapped in a *StepError) when RefuseRingFDs
// finds io_uring descriptors.
var errInheritedRings = errors.New("inherited io_uring descriptors")

// IsInheritedRings reports whether err means RefuseRingFDs found rings.
func IsInheritedRings(err error) bool { return errors.Is(err, errInheritedRings) }

// ExecSpec says what ExecUnder runs and how.
type ExecSpec struct {
	// Policy is applied to the program; it must not be nil.
	Policy *policy.Policy
	// Path is the program to execute (already resolved, as for execve),
	// Args its argv (Args[0] included) and Env its environment.
	Path string
	Args []string
	Env  []string
	// Name names the program in messages; empty means Path.
	Name string
	// RingFDs says what to do with io_uring descriptors already open.
	RingFDs RingFDMode
	// IfSupported runs the program without a policy on kernels that lack
	// io_uring BPF filters, after calling Warn. Without it such kernels
	// are an error.
	IfSupported bool
	// AllowExecDrop runs the program, after calling Warn, on a kernel
	// that drops task filters at execve once a thread used io_uring
	// (ErrExecDropsFilters): the program can then escape the policy.
	// Without it such kernels are an error (StepExecDrop).
	AllowExecDrop bool
	// Warn receives warnings; nil drops them.
	Warn func(msg string)
}

// ExecUnder applies spec.Policy to the calling thread and executes the
// program, which with its children can then only use io_uring as the
// policy says. The steps, each of which fails closed:
//
//  1. check that the kernel has task filters (StepSupport);
//  2. check, by behaviour, that they survive execve (StepExecDrop; see
//     ExecKeepsFilters and AllowExecDrop);
//  3. read its version and compile the policy for it (StepVersion, StepCompile);
//  4. set no_new_privs (StepNoNewPrivs);
//  5. register the plan's task restrictions (StepRestrict), then its
//     filters in order (StepRegister), then a deny filter for each opcode
//     the kernel has beyond ringfence's table (StepDenyNew; see
//     compile.Plan.DenyNewOpcodes);
//  6. install the companion seccomp filter (StepSeccomp; see package
//     seccomp);
//  7. check, by behaviour, that the filters are in place (StepVerify; see
//     VerifyFiltered);
//  8. close or refuse inherited io_uring descriptors (StepRingFDs);
//  9. execve (StepExec).
//
// It returns only on failure, with a *StepError; then the program has not
// been executed, and the calling thread may carry part of the policy (it
// stays locked to the calling goroutine, see ApplyToTask).
func ExecUnder(k Kernel, spec ExecSpec) error {
	if spec.Policy == nil {
		return &StepError{Step: StepCompile, Err: errors.New("no policy")}
	}
	// Task filters and no_new_privs belong to one OS thread: the one that
	// calls execve must be the one that registered them.
	runtime.LockOSThread()
	filtered := true
	if err := k.Supported(); err != nil {
		if !spec.IfSupported {
			return &StepError{Step: StepSupport, Err: err}
		}
		filtered = false
		if spec.Warn != nil {
			name := spec.Name
			if name == "" {
				name = spec.Path
			}
			spec.Warn(fmt.Sprintf("running %s WITHOUT an io_uring policy: %v", name, err))
		}
	}
	if filtered {
		if err := checkExecDrop(k, spec.AllowExecDrop, spec.Warn); err != nil {
			return err
		}
		v, err := k.Version()
		if err != nil {
			return &StepError{Step: StepVersion, Err: err}
		}
		plan, err := Compile(spec.Policy, v)
		if err != nil {
			return &StepError{Step: StepCompile, Err: err}
		}
		if err := applyToTask(k, plan, true, true, spec.Warn); err != nil {
			return err
		}
	}
	if err := handleRingFDs(k, spec.RingFDs); err != nil {
		return err
	}
	if err := k.Exec(spec.Path, spec.Args, spec.Env); err != nil {
		return &StepError{Step: StepExec, Err: err}
	}
	return &StepError{Step: StepExec, Err: errors.New("exec returned without an error")}
}

// checkExecDrop refuses (StepExecDrop) a kernel that drops task filters at
// execve, unless allow, which only warns. A kernel where the check itself
// fails is refused either way: it cannot be shown safe.
func checkExecDrop(k Kernel, allow bool, warn func(string)) error {
	err := k.ExecKeepsFilters()
	switch {
	case err == nil:
		return nil
	case allow && errors.Is(err, ErrExecDropsFilters):
		if warn != nil {
			warn(fmt.Sprintf("UNSAFE: %v; running anyway because it was asked for: the program can escape its io_uring policy", err))
		}
		return nil
	}
	return &StepError{Step: StepExecDrop, Err: err}
}

// applyToTask sets no_new_privs (if nnp), registers plan's task
// restrictions and every filter on the calling thread, in order, then the
// canary filter, installs the companion seccomp filter (if companion), and
// checks by behaviour that the filters are in place: a launcher's seccomp
// filter can answer a registration with a success that never reached the
// kernel. A task that already has restrictions keeps them, with a warning,
// when the companion filter will enforce the register section; without it
// that is an error.
//
// The check covers the filters (all registrations look alike to a seccomp
// filter, which cannot read the memory they point to). The restriction
// set refuses only register operations, which the companion filter
// refuses too; a set that refuses SQE opcodes or flags would need its own
// check by behaviour.
func applyToTask(k Kernel, plan *compile.Plan, nnp, companion bool, warn func(string)) error {
	if nnp {
		if err := k.SetNoNewPrivs(); err != nil {
			return &StepError{Step: StepNoNewPrivs, Err: err}
		}
	}
	// Restrictions first: the kernel refuses them after any task filter.
	if plan.Restrictions != nil {
		err := k.RegisterTaskRestrictions(plan.Restrictions.Encode())
		switch {
		case err == nil:
		case errors.Is(err, syscall.EPERM) && companion:
			// The task already has a restriction set or filters (an
			// outer ringfence run): the kernel takes one set, only
			// before any filter. The outer set stays; the companion
			// seccomp filter enforces this policy's register section.
			if warn != nil {
				warn("this task already has io_uring task restrictions or filters (an outer policy): the kernel takes a restriction set once, so this policy's register section is enforced by the companion seccomp filter")
			}
		default:
			return &StepError{Step: StepRestrict, Err: err}
		}
	}
	var extra []compile.Registration
	if !plan.Empty() {
		// After the plan's own: after a default-deny policy's DENY_REST
		// registration, the canary's NOP filter cannot allow NOP.
		canary, err := canaryRegistration(plan.Kernel)
		if err != nil {
			return &StepError{Step: StepCompile, Err: err}
		}
		extra = append(extra, canary)
	}
	if err := registerPlan(plan, extra, k.RegisterTaskFilter); err != nil {
		return err
	}
	if companion {
		prog, err := CompanionSeccomp(plan)
		if err == nil {
			err = k.InstallSeccomp(prog)
		}
		if err != nil {
			return &StepError{Step: StepSeccomp, Err: err}
		}
	}
	if !plan.Empty() {
		if err := k.VerifyFiltered(); err != nil {
			return &StepError{Step: StepVerify, Err: err}
		}
	}
	return nil
}

// registerPlan makes plan's filter registrations, then extra's, through
// reg, in order (StepRegister). Then, if the plan asks for it
// (DenyNewOpcodes), it
// registers compile.NewOpcodeFilter for each opcode from abi.OpLast on,
// until the kernel refuses one with EINVAL: that opcode is the kernel's
// IORING_OP_LAST, and every opcode this kernel has that ringfence does not
// know is then denied, as DENY_REST would deny it (StepDenyNew). Any other
// error fails closed.
func registerPlan(plan *compile.Plan, extra []compile.Registration, reg func(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error) error {
	regs := append(plan.Registrations[:len(plan.Registrations):len(plan.Registrations)], extra...)
	n := len(regs)
	for i, r := range regs {
		if err := reg(r.Op, r.Prog.Instructions(), r.Flags, r.PDUSize); err != nil {
			return &StepError{Step: StepRegister, Index: i, Count: n, Op: r.Op, Err: err}
		}
	}
	if !plan.DenyNewOpcodes {
		return nil
	}
	deny := compile.NewOpcodeFilter().Instructions()
	for op := abi.OpLast; op <= 255; op++ {
		err := reg(abi.Opcode(op), deny, 0, 0)
		switch {
		case errors.Is(err, syscall.EINVAL):
			return nil
		case err != nil:
			return &StepError{Step: StepDenyNew, Op: abi.Opcode(op), Err: err}
		}
	}
	return nil
}

// CompanionSeccomp returns the seccomp filter that ExecUnder and ApplyToTask
// install with plan (see package seccomp): it refuses pidfd_getfd, and the
// io_uring_register operations the plan's policy does not allow, on any
// descriptor and ring-less. That repeats the task restrictions where they
// hold and covers where they do not: Linux 7.0 to 7.2 do not check the
// ring-less IORING_REGISTER_SEND_MSG_RING against them, and a task that
// already has a restriction set cannot take another. A runtime that
// installs its own seccomp profile can merge these rules into it instead.
func CompanionSeccomp(plan *compile.Plan) ([]cbpf.Instruction, error) {
	var deny []abi.RegisterOp
	for op := range abi.RegisterOp(abi.RegisterOpLast) {
		if !plan.Restrictions.AllowsRegister(op) {
			deny = append(deny, op)
		}
	}
	opt := seccomp.Options{DenyRegister: deny}
	if plan.Restrictions != nil {
		// An allow list allows no operation it cannot name: those of
		// kernels newer than ringfence's table, as the restriction set.
		opt.DenyRegisterFrom = abi.RegisterOpLast
	}
	return seccomp.Build(runtime.GOARCH, opt)
}

// handleRingFDs closes or refuses the process's io_uring descriptors.
func handleRingFDs(k Kernel, mode RingFDMode) error {
	fds, err := k.RingFDs()
	if err != nil {
		return &StepError{Step: StepRingFDs, Err: err}
	}
	if len(fds) == 0 {
		return nil
	}
	if mode == RefuseRingFDs {
		return &StepError{Step: StepRingFDs, Err: fmt.Errorf("%w %s are open; rings created before the policy are not filtered (close them, or use --ring-fds=close)", errInheritedRings, fdList(fds))}
	}
	for _, fd := range fds {
		if err := k.Close(fd); err != nil {
			return &StepError{Step: StepRingFDs, Err: fmt.Errorf("close io_uring descriptor %d: %w", fd, err)}
		}
	}
	// Check again: nothing may have slipped through.
	left, err := k.RingFDs()
	if err != nil {
		return &StepError{Step: StepRingFDs, Err: err}
	}
	if len(left) > 0 {
		return &StepError{Step: StepRingFDs, Err: fmt.Errorf("io_uring descriptors %s still open after closing", fdList(left))}
	}
	return nil
}

func fdList(fds []int) string {
	s := make([]string, len(fds))
	for i, fd := range fds {
		s[i] = fmt.Sprint(fd)
	}
	return strings.Join(s, ", ")
}
