package compile

import (
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Restrictions is the io_uring task restriction set a plan registers on
// the task before its filters (IORING_REGISTER_RESTRICTIONS with fd -1).
// The kernel takes one set per task, only before any task filter, and
// refuses with EACCES, on every ring the task and its children create
// afterwards, each register operation, SQE opcode and SQE flag the set does
// not allow (seen on Linux 7.0 to 7.3; see docs/kernel.md).
//
// A set allows all SQE opcodes and flags unless a compiler pass narrows
// them: opcode-only decisions can move here from BPF. Register operations
// are the policy's register section plus REGISTER_RESTRICTIONS and
// REGISTER_BPF_FILTER, which only let a program narrow itself further and
// which ringfence needs after the set is registered (on 7.3 a set that
// lacks them refuses the task's filters with EACCES).
type Restrictions struct {
	// RegisterOps[op] allows io_uring_register opcode op.
	RegisterOps [abi.RegisterOpLast]bool
	// SQEOps[op] allows SQE opcode op.
	SQEOps [abi.OpLast]bool
	// SQEFlagsAllowed are the IOSQE_* flags a request may carry;
	// SQEFlagsRequired those it must carry.
	SQEFlagsAllowed, SQEFlagsRequired uint8
}

// restrictionsFor returns the task restriction set of p, or nil when p has
// no register section (then no set is registered and every register
// operation stays allowed).
func restrictionsFor(p *policy.Policy) *Restrictions {
	if p.Register == nil {
		return nil
	}
	r := &Restrictions{SQEFlagsAllowed: abi.IOSQEValidFlagsMask}
	for op := range r.SQEOps {
		r.SQEOps[op] = true
	}
	for _, op := range p.Register.Allow {
		r.RegisterOps[op] = true
	}
	r.RegisterOps[abi.RegOpRestrictions] = true
	r.RegisterOps[abi.RegOpBPFFilter] = true
	return r
}

// Encode returns the set as the kernel's io_uring_restriction entries:
// register opcodes, then SQE opcodes, then the flag masks.
func (r *Restrictions) Encode() []abi.Restriction {
	var out []abi.Restriction
	for op, ok := range r.RegisterOps {
		if ok {
			out = append(out, abi.Restriction{Op: abi.RestrictRegisterOp, Value: uint8(op)})
		}
	}
	for op, ok := range r.SQEOps {
		if ok {
			out = append(out, abi.Restriction{Op: abi.RestrictSQEOp, Value: uint8(op)})
		}
	}
	out = append(out, abi.Restriction{Op: abi.RestrictSQEFlagsAllowed, Value: r.SQEFlagsAllowed})
	if r.SQEFlagsRequired != 0 {
		out = append(out, abi.Restriction{Op: abi.RestrictSQEFlagsRequired, Value: r.SQEFlagsRequired})
	}
	return out
}

// AllowsRegister reports whether the set allows register opcode op; a nil
// set allows every one.
func (r *Restrictions) AllowsRegister(op abi.RegisterOp) bool {
	return r == nil || int(op) < len(r.RegisterOps) && r.RegisterOps[op]
}

// String lists the allowed register operations, and the SQE opcodes and
// flags when they are narrowed, for listings.
func (r *Restrictions) String() string {
	s := "register ops " + strings.Join(allowedNames[abi.RegisterOp](r.RegisterOps[:]), " ")
	n := 0
	for _, ok := range r.SQEOps {
		if ok {
			n++
		}
	}
	if n != abi.OpLast {
		s += fmt.Sprintf("; %d of %d SQE opcodes", n, abi.OpLast)
	}
	if r.SQEFlagsAllowed != abi.IOSQEValidFlagsMask || r.SQEFlagsRequired != 0 {
		s += fmt.Sprintf("; SQE flags allowed %#x, required %#x", r.SQEFlagsAllowed, r.SQEFlagsRequired)
	}
	return s
}

// allowedNames returns the names of the opcodes allowed[op] allows, in
// opcode order; an empty list, not nil, when none.
func allowedNames[T interface {
	~uint8
	fmt.Stringer
}](allowed []bool) []string {
	names := []string{}
	for op, ok := range allowed {
		if ok {
			names = append(names, T(op).String())
		}
	}
	return names
}
