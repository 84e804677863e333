package ringfence

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// LoadPolicy reads and parses a policy file (YAML or JSON). Errors carry
// file:line:column.
func LoadPolicy(path string) (*policy.Policy, error) {
	data, err := readlimit.File(path)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(data, path)
}

// ParsePolicy parses a policy (YAML or JSON) from data; name is used in
// error messages as the file name.
func ParsePolicy(data []byte, name string) (*policy.Policy, error) {
	return policy.Parse(data, name)
}

// Profile returns the built-in profile name ("base", "default",
// "deny-all", "network-server", "storage"; see package profiles), parsed
// and flattened (the profiles extend "base").
func Profile(name string) (*policy.Policy, error) {
	data, err := profiles.Get(name)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(data, "profile "+name)
}

// Compile compiles p for kernel k in the machine's byte order. The plan's
// registrations are to be applied in order (ApplyToTask, ApplyToRing). It
// fails when p needs fields k does not pass to filters (CONNECT before 7.2).
func Compile(p *policy.Policy, k abi.Version) (*compile.Plan, error) {
	return compile.Compile(p, compile.Options{Kernel: k, ByteOrder: binary.NativeEndian})
}

// ApplyOptions adjust ApplyToTask.
type ApplyOptions struct {
	// SkipNoNewPrivs skips setting no_new_privs. The kernel then accepts
	// the filters only from a caller with CAP_SYS_ADMIN (in its user
	// namespace); without it the first registration fails with EACCES.
	SkipNoNewPrivs bool
	// AllowExecDrop applies the plan even on a kernel that drops task
	// filters at execve (ErrExecDropsFilters), where the workload can
	// escape the policy. Without it such kernels are refused.
	AllowExecDrop bool
	// SkipSeccomp does not install the companion seccomp filter
	// (CompanionSeccomp), for a runtime that merges its rules into its
	// own seccomp profile. Without them the workload can steal the
	// io_uring descriptors of same-user processes it may ptrace.
	SkipSeccomp bool
	// Warn receives warnings (a task that already has io_uring task
	// restrictions); nil drops them.
	Warn func(msg string)
}

// ApplyToTask registers plan on the calling thread: every ring the thread
// creates afterwards, and every process it starts afterwards, is filtered.
// It first sets no_new_privs, unless opts.SkipNoNewPrivs.
//
// It locks the calling goroutine to its OS thread and leaves it locked: the
// exec or fork that starts the workload must come from the same goroutine.
// On error the thread may carry part of the plan; do not run the workload.
//
// It registers the plan's task restrictions, then its filters, then
// installs the companion seccomp filter (unless opts.SkipSeccomp).
//
// Some kernels (Debian's 7.0.13; fixed in 7.1) drop the filters at execve
// if the thread has used io_uring (created a ring, even a closed one): the
// workload could then shed them by creating a ring and executing any
// program. ApplyToTask first checks for that by behaviour
// (ExecKeepsFilters, in a throwaway child) and refuses such a kernel with
// an error wrapping ErrExecDropsFilters (StepExecDrop) unless
// opts.AllowExecDrop. Do not create rings on this thread before the exec.
func ApplyToTask(plan *compile.Plan, opts ApplyOptions) error {
	return ApplyToTaskWith(Host(), plan, opts)
}

// ApplyToTaskWith is ApplyToTask through the kernel interface k.
func ApplyToTaskWith(k Kernel, plan *compile.Plan, opts ApplyOptions) error {
	runtime.LockOSThread()
	if err := checkExecDrop(k, opts.AllowExecDrop, nil); err != nil {
		return err
	}
	return applyToTask(k, plan, !opts.SkipNoNewPrivs, !opts.SkipSeccomp, opts.Warn)
}

// ApplyToRing registers plan on the io_uring instance fd only. Ring filters
// need no privilege. A ring created with IORING_SETUP_R_DISABLED can be
// filtered before it runs any request; otherwise requests submitted before
// ApplyToRing returns were not filtered.
func ApplyToRing(fd int, plan *compile.Plan) error {
	return ApplyToRingWith(Host(), fd, plan)
}

// ApplyToRingWith is ApplyToRing through the kernel interface k.
func ApplyToRingWith(k Kernel, fd int, plan *compile.Plan) error {
	return registerPlan(plan, nil, func(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pduSize uint8) error {
		return k.RegisterRingFilter(fd, op, prog, flags, pduSize)
	})
}

// RunningKernel returns the version of the running kernel.
func RunningKernel() (abi.Version, error) { return Host().Version() }

// Explanation is why a policy decides a request the way it does.
type Explanation struct {
	// Decision is the reference evaluator's answer.
	Decision policy.Decision
	// Rule is the deciding rule, or nil when the default decided.
	Rule *policy.Rule
	// Reason is one line for people: `allow: rule 2 ("sockets") matched`.
	Reason string
}

// Explain decides r under p with the reference evaluator and says which
// rule decided.
func Explain(p *policy.Policy, r policy.Request) Explanation {
	d := p.Decide(r)
	e := Explanation{Decision: d}
	if d.Rule >= 0 {
		rule := p.Rules[d.Rule]
		e.Rule = &rule
		e.Reason = fmt.Sprintf("%s: %s (%s) matched %s", d.Action(), rule.Label(d.Rule), rule.Pos, r.Op)
	} else {
		e.Reason = fmt.Sprintf("%s: no rule matched %s; the policy's default is %s", d.Action(), r.Op, p.Default)
	}
	return e
}

// RequestFromCtx returns the request a filter context describes: what the
// reference evaluator (policy.Policy.Decide) judges for the context the
// kernel builds. Per-opcode data is read according to c.Opcode and only
// when c.PDUSize says the kernel passed it. bo is the context's byte order.
func RequestFromCtx(c abi.Ctx, bo binary.ByteOrder) policy.Request {
	r := policy.Request{Op: abi.Opcode(c.Opcode), UserData: c.UserData, SQEFlags: c.SQEFlags}
	if c.PDUSize == 0 {
		return r
	}
	info, _ := r.Op.Info()
	switch info.View {
	case abi.ViewSocket:
		r.Socket = c.Socket(bo)
	case abi.ViewOpen:
		r.Open = c.Open(bo)
	case abi.ViewConnect:
		r.Connect = c.Connect(bo)
	}
	return r
}
