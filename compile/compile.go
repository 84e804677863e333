// Package compile turns a ringfence policy into a plan: the ordered list of
// io_uring BPF filter registrations that makes the kernel enforce the
// policy exactly.
//
// For each opcode the compiler renders the chain of rules that name it
// (first match, then the default) into classic BPF: conditions become
// predicates with "matched" and "mismatched" exits, value sets and ranges
// become balanced decision trees, 64-bit fields test their high word only
// where it matters. Optimisation passes then thread jumps, share loads and
// drop dead code, a layout pass resolves labels and lowers long jumps, and
// cbpf.Check must accept the result: a program the checker refuses is a
// compile error, never a weaker filter. docs/compiler.md describes the
// design.
package compile

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/policy"
)

// Options choose the target of a compile.
type Options struct {
	// Kernel is the Linux version the plan is for: it decides which
	// fields filters see (CONNECT data from 7.2). It must be 7.0 or later.
	Kernel abi.Version
	// ByteOrder is the byte order of the machine that runs the filters;
	// nil means little-endian (x86-64, arm64).
	ByteOrder binary.ByteOrder
	// Naive compiles each condition as one comparison per value (a chain
	// of jeq, two jumps per range), reloads every word, and runs no
	// optimisation: the baseline the figures compare against. Naive plans
	// are correct and register the same opcodes; they are just slower.
	Naive bool
	// DenyRest compiles a default-deny policy the way ringfence did
	// before it knew better (the default form does it too when the
	// policy always allows no opcode, where it costs nothing): every
	// opcode the policy may allow gets a
	// filter (a single "ret #1" for an opcode it always allows), and the
	// last registration carries IO_URING_BPF_FILTER_DENY_REST, which
	// denies every other opcode the kernel has, newer ones included,
	// with no further registration. The kernel decides every request as
	// under the default form, but runs a filter on every allowed request:
	// the default form registers nothing for an opcode the policy always
	// allows (the kernel's cheapest path), a "ret #0" filter for each
	// opcode it always denies, and leaves opcodes newer than ringfence to
	// the applier (Plan.DenyNewOpcodes). Kept as the baseline of the cost
	// benchmarks, and for tools that want one static list of
	// registrations.
	DenyRest bool
}

// Registration is one io_uring_register(IORING_REGISTER_BPF_FILTER) call.
type Registration struct {
	// Op is the opcode the filter is for.
	Op abi.Opcode
	// Prog is the filter, accepted by cbpf.Check.
	Prog *cbpf.Program
	// Flags is abi.FilterDenyRest on the last registration of a
	// default-deny policy, else 0.
	Flags uint32
	// PDUSize is the kernel's per-opcode data size when the program reads
	// per-opcode data (so a kernel that gives less fails the registration
	// with EMSGSIZE instead of filtering on zeros), else 0.
	PDUSize uint8
	// Comment says what the filter enforces, for listings.
	Comment string
	// Rules are the indexes in Policy.Rules of the rules that name Op.
	Rules []int
}

// Filter returns the kernel registration struct for r (without the
// program pointer).
func (r Registration) Filter() abi.Filter {
	return abi.Filter{Opcode: uint32(r.Op), Flags: r.Flags, Len: uint32(r.Prog.Len()), PDUSize: r.PDUSize}
}

// Plan is a compiled policy: registrations to make in order, for one
// kernel and byte order.
type Plan struct {
	// Kernel is the kernel the plan was compiled for.
	Kernel abi.Version
	// ByteOrder is the byte order of the machine the filters run on.
	ByteOrder binary.ByteOrder
	// Registrations are the filters to register, in this order.
	Registrations []Registration
	// Restrictions is the task restriction set to register before the
	// filters, or nil for none (a policy without a register section).
	Restrictions *Restrictions
	// DenyNewOpcodes is set on a default-deny plan that has no
	// DENY_REST registration: the opcodes the running kernel has beyond
	// ringfence's table (abi.OpLast and up) have no filter in
	// Registrations, and the applier must deny them by registering
	// NewOpcodeFilter for each, after the registrations, from abi.OpLast
	// up to the first opcode the kernel refuses with EINVAL (the
	// kernel's IORING_OP_LAST). Linux 7.0 to 7.3 have none.
	DenyNewOpcodes bool
	// Policy is the policy the plan was compiled from.
	Policy *policy.Policy
	// chains[op] lists, in the order the kernel runs them, the filters
	// that judge op: a registration index, or -1-index for the deny stub
	// that registration's DENY_REST left. Computed by Compile.
	chains [abi.OpLast][]int
	ready  bool         // chains and opPart computed
	opPart abi.WordPart // where the opcode byte sits in the loaded words
}

// Compile turns p into a plan for the kernel and byte order in opt.
//
// p must be valid: Compile runs p.Validate first and returns its errors, so
// a policy built in Go with an empty range, a field its opcodes lack or an
// unknown action is an error, never a meaningless filter.
func Compile(p *policy.Policy, opt Options) (*Plan, error) {
	if p == nil {
		return nil, fmt.Errorf("compile: no policy")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if opt.ByteOrder == nil {
		opt.ByteOrder = binary.LittleEndian
	}
	if isBig(opt.ByteOrder) {
		opt.ByteOrder = binary.BigEndian
	} else {
		opt.ByteOrder = binary.LittleEndian
	}
	if opt.Kernel.Less(abi.FilterSince()) {
		return nil, fmt.Errorf("io_uring BPF filters need Linux %v; target is %v", abi.FilterSince(), opt.Kernel)
	}
	if pos, fieldName := p.NeedsWhy(opt.Kernel); fieldName != "" {
		f, _ := policy.LookupField(fieldName)
		why := ""
		if f.View == abi.ViewConnect {
			why = fmt.Sprintf(" (CONNECT carries no data for filters before %v)", f.Since)
		}
		return nil, fmt.Errorf("%v: %s needs Linux %v or later%s; target is %v", posOf(p, pos), fieldName, f.Since, why, opt.Kernel)
	}
	c := &compiler{pol: p, opt: opt}
	progs := make([]*cbpf.Program, abi.OpLast)
	consts := make([]int, abi.OpLast) // 1 always allow, 0 always deny, -1 depends
	rulesOf := make([][]int, abi.OpLast)
	for op := range abi.Opcode(abi.OpLast) {
		for i, r := range p.Rules {
			if r.Names(op) {
				rulesOf[op] = append(rulesOf[op], i)
			}
		}
		prog, err := c.program(op, false)
		if err != nil {
			return nil, err
		}
		consts[op] = -1
		if ins := prog.Instructions(); len(ins) == 1 {
			if k, ok := isRetK(ins[0]); ok {
				consts[op] = 0
				if k != 0 {
					consts[op] = 1
				}
			}
		}
		progs[op] = prog
		if opt.Naive && consts[op] < 0 {
			if progs[op], err = c.program(op, true); err != nil {
				return nil, err
			}
		}
	}
	plan := &Plan{Kernel: opt.Kernel, ByteOrder: opt.ByteOrder, Policy: p, Restrictions: restrictionsFor(p)}
	add := func(op abi.Opcode, prog *cbpf.Program) {
		reg := Registration{Op: op, Prog: prog, Rules: rulesOf[op]}
		info, _ := op.Info()
		if readsData(prog) {
			reg.PDUSize = info.PDUSize
		}
		reg.Comment = comment(p, op, rulesOf[op], consts[op])
		plan.Registrations = append(plan.Registrations, reg)
	}
	// DENY_REST costs a "ret #1" run on every request of an opcode the
	// policy always allows; with no such opcode it costs nothing, and
	// denies newer opcodes in the kernel with fewer registrations.
	denyRest := opt.DenyRest || !slices.Contains(consts, 1)
	switch {
	case p.Default != policy.Allow && denyRest: // as the evaluator: anything but allow denies
		for op := range abi.Opcode(abi.OpLast) {
			if consts[op] != 0 {
				add(op, progs[op])
			}
		}
		if len(plan.Registrations) == 0 {
			add(0, NewOpcodeFilter())
		}
		plan.Registrations[len(plan.Registrations)-1].Flags |= abi.FilterDenyRest
	case p.Default != policy.Allow:
		// An opcode with no filter is allowed, at no cost: the kernel
		// looks at its slot and goes on. So only the opcodes the policy
		// may deny get one.
		for op := range abi.Opcode(abi.OpLast) {
			if consts[op] != 1 {
				add(op, progs[op])
			}
		}
		plan.DenyNewOpcodes = true
	default:
		for op := range abi.Opcode(abi.OpLast) {
			if consts[op] != 1 {
				add(op, progs[op])
			}
		}
	}
	plan.chains, plan.opPart, plan.ready = chainsOf(plan.Registrations), opcodePart(plan.ByteOrder), true
	return plan, nil
}

// Empty reports whether the plan registers nothing: no filter, no
// restriction set and no denial of newer opcodes (a default-allow policy
// without rules or register section). Applying it changes nothing but
// no_new_privs.
func (p *Plan) Empty() bool {
	return len(p.Registrations) == 0 && p.Restrictions == nil && !p.DenyNewOpcodes
}

// NewOpcodeFilter returns the filter that denies every request: "ret #0".
// Appliers register it for each opcode beyond ringfence's table when
// Plan.DenyNewOpcodes is set.
func NewOpcodeFilter() *cbpf.Program {
	return cbpf.MustCheck([]cbpf.Instruction{cbpf.Ret(0)})
}

// DeniesNew reports whether the kernel denies, under the plan, requests
// whose opcode is beyond ringfence's table: when DenyNewOpcodes asks the
// applier to, or a DENY_REST registration leaves its stub on them.
func (p *Plan) DeniesNew() bool {
	if p.DenyNewOpcodes {
		return true
	}
	for _, r := range p.Registrations {
		if r.Flags&abi.FilterDenyRest != 0 {
			return true
		}
	}
	return false
}

// posOf returns pos as a string, with the policy's file name when pos has
// none.
func posOf(p *policy.Policy, pos policy.Pos) string {
	if pos.File == "" {
		pos.File = p.File
	}
	return pos.String()
}

// comment describes what an opcode's filter enforces.
func comment(p *policy.Policy, op abi.Opcode, rules []int, k int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d): ", op, op)
	switch k {
	case 1:
		b.WriteString("always allowed")
	case 0:
		b.WriteString("always denied")
	default:
		var names []string
		for _, i := range rules {
			names = append(names, strings.TrimPrefix(p.Rules[i].Label(i), "rule "))
		}
		fmt.Fprintf(&b, "rules %s, then default %v", strings.Join(names, ", "), p.Default)
	}
	return b.String()
}

// readsData reports whether prog loads a word of the per-opcode data.
func readsData(prog *cbpf.Program) bool {
	for _, in := range prog.Instructions() {
		if in.Op == cbpf.ClassLD|cbpf.SizeW|cbpf.ModeABS && in.K >= abi.OffPDU {
			return true
		}
	}
	return false
}

// compiler holds what one Compile call needs.
type compiler struct {
	pol *policy.Policy
	opt Options
}

// allowRet is what the compiled filters return to allow a request.
const allowRet = 1

// program compiles the rule chain of op.
func (c *compiler) program(op abi.Opcode, naive bool) (*cbpf.Program, error) {
	sp, err := c.render(op, naive)
	if err != nil {
		return nil, err
	}
	if naive {
		sp, _ = dropUnreachable(sp)
	} else if sp, err = optimize(sp); err != nil {
		return nil, err
	}
	insns, err := layout(islands(sp))
	if err != nil {
		return nil, err
	}
	if len(insns) > cbpf.MaxInstructions {
		return nil, fmt.Errorf("the filter for %v needs %d instructions; the kernel allows at most %d (split large value sets or simplify the rules naming %v)",
			op, len(insns), cbpf.MaxInstructions, op)
	}
	prog, err := cbpf.Check(insns)
	if err != nil {
		return nil, fmt.Errorf("compile: internal error: the filter for %v is not a valid io_uring filter: %v", op, err)
	}
	return prog, nil
}

// render renders the rule chain of op as an unoptimised symbolic program.
func (c *compiler) render(op abi.Opcode, naive bool) (sprog, error) {
	b := &builder{}
	allow, deny := b.newLabel(), b.newLabel()
	act := func(a policy.Action) label {
		if a == policy.Allow {
			return allow
		}
		return deny
	}
	done := false
	for i, r := range c.pol.Rules {
		if !r.Names(op) {
			continue
		}
		var and pAnd
		for _, cond := range r.Conds {
			pr, err := c.condPred(op, cond)
			if err != nil {
				return nil, fmt.Errorf("%v: %v", posOf(c.pol, cond.Pos), err)
			}
			and = append(and, pr)
		}
		var pr pred = and
		if !naive {
			pr = simplify(pr)
			if pc, ok := pr.(pConst); ok {
				if !pc {
					continue
				}
				b.ja(act(r.Action))
				done = true
				break
			}
		}
		next := b.newLabel()
		b.fragment(fmt.Sprintf("rule %d", i+1), []label{act(r.Action), next}, func() {
			render(b, pr, act(r.Action), next, naive)
		})
		b.place(next)
	}
	if !done {
		b.ja(act(c.pol.Default))
	}
	b.place(allow)
	b.ret(allowRet)
	b.place(deny)
	b.ret(0)
	return b.finish()
}

// condPred returns the predicate of one condition for requests with
// opcode op, following policy.Cond.Eval: a condition on a field op does not
// have never holds.
func (c *compiler) condPred(op abi.Opcode, cond policy.Cond) (pred, error) {
	spec, ok := policy.LookupField(cond.Field)
	if !ok {
		return nil, fmt.Errorf("unknown field %q", cond.Field)
	}
	if !policy.FieldApplies(op, cond.Field) {
		return pConst(false), nil
	}
	if info, _ := op.Info(); info.View != abi.ViewCommon && spec.View == info.View && !info.HasData(c.opt.Kernel) {
		return nil, fmt.Errorf("%s needs Linux %v or later (%v carries no data for filters before %v); target is %v",
			cond.Field, info.DataSince, op, info.DataSince, c.opt.Kernel)
	}
	isCIDR := cond.Op == policy.CIDR || cond.Op == policy.NotCIDR
	if spec.IsAddr() || isCIDR {
		if !spec.IsAddr() || !isCIDR {
			return pConst(false), nil
		}
		return cidrPred(cond, c.opt.ByteOrder)
	}
	f, err := lookupField(cond.Field, c.opt.ByteOrder)
	if err != nil {
		return nil, err
	}
	switch cond.Op {
	case policy.Masked, policy.HasAll, policy.HasAny, policy.HasNone:
		return f.bitsPred(cond), nil
	}
	return f.setPred(intervalsOf(cond, f.maxv)), nil
}

// chainsOf works out, for every opcode, which filters the kernel runs and
// in what order, after the registrations are made in order: a filter
// registered later runs first, and DENY_REST gives every opcode without a
// filter yet a deny stub that stays at the end of its chain.
func chainsOf(regs []Registration) [abi.OpLast][]int {
	var reg [abi.OpLast][]int // in registration order
	var stub [abi.OpLast]int  // 1+index of the registration that left a stub
	for i, r := range regs {
		if int(r.Op) < abi.OpLast {
			reg[r.Op] = append(reg[r.Op], i)
		}
		if r.Flags&abi.FilterDenyRest != 0 {
			for op := range reg {
				if len(reg[op]) == 0 && stub[op] == 0 {
					stub[op] = i + 1
				}
			}
		}
	}
	var chains [abi.OpLast][]int
	for op := range reg {
		for j := len(reg[op]) - 1; j >= 0; j-- {
			chains[op] = append(chains[op], reg[op][j])
		}
		if stub[op] != 0 {
			chains[op] = append(chains[op], -stub[op])
		}
	}
	return chains
}

// FilterRun is one filter the kernel ran for a request.
type FilterRun struct {
	// Reg is the registration's index in Plan.Registrations.
	Reg int
	// Stub is true for the deny stub that registration's DENY_REST left.
	Stub bool
	// Ret is what the filter returned (0 denies).
	Ret uint32
	// Path lists the instructions executed (none for a stub).
	Path []int
}

// Verdict is how the kernel would judge a request under a plan.
type Verdict struct {
	// Allow is true when every filter returned nonzero.
	Allow bool
	// Runs are the filters run, in the kernel's order; the last one
	// decided (a denying filter stops the walk). Empty when no filter
	// covers the opcode (then the request is allowed).
	Runs []FilterRun
}

// Decide returns how the kernel would judge the context c under the plan.
func (p *Plan) Decide(c abi.Ctx) Verdict {
	w := cbpf.WordsOf(c.Encode(p.ByteOrder), p.ByteOrder)
	return p.DecideWords(&w, true)
}

// DecideWords is Decide on the context as words; trace asks for the
// executed paths (slower).
func (p *Plan) DecideWords(w *cbpf.Words, trace bool) Verdict {
	op := p.opcode(w)
	v := Verdict{Allow: true}
	if op >= abi.OpLast {
		// An opcode ringfence does not know: a kernel that has it judges
		// it by the applier's NewOpcodeFilter or a DENY_REST stub.
		v.Allow = !p.DeniesNew()
		return v
	}
	for _, r := range p.chain(op) {
		run := FilterRun{Reg: r}
		if r < 0 {
			run.Reg, run.Stub = -r-1, true
		} else if trace {
			run.Ret, run.Path = p.Registrations[r].Prog.Trace(w)
		} else {
			run.Ret = p.Registrations[r].Prog.Run(w)
		}
		v.Runs = append(v.Runs, run)
		if run.Ret == 0 {
			v.Allow = false
			break
		}
	}
	return v
}

// Allows is DecideWords without the details: whether the kernel would let
// the request with context words w run.
func (p *Plan) Allows(w *cbpf.Words) bool {
	op := p.opcode(w)
	if op >= abi.OpLast {
		return !p.DeniesNew()
	}
	for _, r := range p.chain(op) {
		if r < 0 || p.Registrations[r].Prog.Run(w) == 0 {
			return false
		}
	}
	return true
}

// chain returns the filters the kernel runs for op, in order (see
// chainsOf), also for a Plan not made by Compile.
func (p *Plan) chain(op int) []int {
	if p.ready {
		return p.chains[op]
	}
	c := chainsOf(p.Registrations)
	return c[op]
}

// opcodePart returns where the opcode byte sits in the loaded words.
func opcodePart(bo binary.ByteOrder) abi.WordPart {
	opf, _ := abi.LookupField("opcode")
	if bo == nil {
		bo = binary.LittleEndian
	}
	return opf.Parts(bo)
}

// opcode returns the opcode of the context words w.
func (p *Plan) opcode(w *cbpf.Words) int {
	part := p.opPart
	if !p.ready {
		part = opcodePart(p.ByteOrder)
	}
	return int(w[part.Word/4]>>part.Shift) & int(part.Mask)
}
