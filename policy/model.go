// Package policy is the ringfence policy model: what a workload may do through
// io_uring, per opcode, written in YAML or JSON (docs/policy.md is the
// specification). It parses and validates policies with file:line:column
// errors, lints them, and decides requests with a reference evaluator that
// follows the specification literally and uses no BPF at all: it is what the
// compiler is tested against.
//
// Policies are values: Parse returns a fresh *Policy, and nothing in the
// package keeps state between calls.
package policy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// Version is the policy format version this package reads and writes.
const Version = 1

// Action is what happens to a request: Deny or Allow. The zero value is
// Deny, so a forgotten action fails closed.
type Action uint8

// The actions.
const (
	Deny  Action = 0
	Allow Action = 1
)

// String returns "allow" or "deny".
func (a Action) String() string {
	switch a {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Pos is a place in a policy or cases file. Line and Col are 1-based; zero
// means unknown.
type Pos struct {
	File      string
	Line, Col int
}

// String returns "file:line:col", dropping the parts that are unknown.
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// Before reports whether p comes before q (file, then line, then column).
func (p Pos) Before(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Policy is a parsed, valid policy: a default action and rules tried in
// order, first match per opcode.
type Policy struct {
	// Version is the format version, always 1 for now.
	Version int
	// Default decides requests no rule matches.
	Default Action
	// Rules are tried in order; only the rules naming the request's opcode
	// take part.
	Rules []Rule
	// File is the name the policy was parsed from, for messages.
	File string
	// Name and Comment are free text from the file, if any.
	Name, Comment string
	// DefaultPos is where the default was written (zero if it was not,
	// also when the default came from the bases).
	DefaultPos Pos
	// Register lists the io_uring_register(2) operations the program may
	// use; nil (no register section) allows every one. Register calls are
	// not requests: filters never see them, the kernel's task
	// restrictions do.
	Register *Register
	// Extends are the policies this one extends, as written (built-in
	// profile names or paths). Rules holds them already flattened: the
	// policy's own rules first, then the bases' (see ParseWith).
	Extends []string
}

// Register is a policy's register section: the io_uring_register(2)
// operations the program may use. Every operation it does not list is
// refused with EACCES on rings the program creates. ringfence itself always
// adds REGISTER_RESTRICTIONS and REGISTER_BPF_FILTER to the list it
// registers: they only let a program narrow its own io_uring further.
type Register struct {
	// Allow are the allowed operations, in file order, no duplicates.
	Allow []abi.RegisterOp
	// Comment is free text from the file.
	Comment string
	// Pos is where the section starts in its file.
	Pos Pos
}

// RegisterAllows reports whether the policy lets the program call
// io_uring_register with op: always without a register section.
func (p *Policy) RegisterAllows(op abi.RegisterOp) bool {
	if p.Register == nil {
		return true
	}
	for _, o := range p.Register.Allow {
		if o == op {
			return true
		}
	}
	return false
}

// Rule is one rule: for the opcodes it names, when every condition holds,
// the action decides.
type Rule struct {
	// Name is free text from the file ("" if none), shown by explain.
	Name string
	// Ops are the opcodes the rule applies to, in file order, no duplicates.
	Ops []abi.Opcode
	// Action is the decision when the rule matches.
	Action Action
	// Conds must all hold for the rule to match; none means always.
	Conds []Cond
	// Pos is where the rule starts in its file.
	Pos Pos
	// Comment is free text from the file.
	Comment string
	// From is "" for a rule the policy wrote itself, and for a rule it
	// inherited the reference (as written in extends) of the base it came
	// through; Pos.File names the file that wrote it.
	From string
}

// Label returns a short description for messages: `rule 3 ("web")` or
// `rule 3`, with 1-based numbering as a reader counts rules in the file
// (in the flattened policy, for a policy that extends others); an
// inherited rule adds where it comes from: `rule 7 ("io") from default`.
func (r Rule) Label(i int) string {
	s := fmt.Sprintf("rule %d", i+1)
	if r.Name != "" {
		s = fmt.Sprintf("rule %d (%q)", i+1, r.Name)
	}
	if r.From != "" {
		s += " from " + r.From
	}
	return s
}

// Names reports whether the rule applies to op.
func (r Rule) Names(op abi.Opcode) bool {
	for _, o := range r.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// CmpOp is a condition's operator.
type CmpOp uint8

// The operators. The comment says what Cond.Values (or Cond.Nets) holds and
// when the condition holds for a field value v (already normalised, see
// Normalize).
const (
	Eq       CmpOp = iota // Values[0]: v == Values[0]
	Ne                    // Values[0]: v != Values[0]
	In                    // Values (a set, at least one): v is one of them
	NotIn                 // Values (a set, at least one): v is none of them
	Lt                    // Values[0]: v < Values[0], unsigned
	Le                    // Values[0]: v <= Values[0]
	Gt                    // Values[0]: v > Values[0]
	Ge                    // Values[0]: v >= Values[0]
	Range                 // Values[0], Values[1]: lo <= v <= hi
	NotRange              // Values[0], Values[1]: v < lo || v > hi
	Masked                // Values[0] mask, Values[1] value: v & mask == value
	HasAll                // Values[0] bits: v & bits == bits
	HasAny                // Values[0] bits: v & bits != 0
	HasNone               // Values[0] bits: v & bits == 0
	CIDR                  // Nets: connect.addr is inside one of the prefixes of its family
	NotCIDR               // Nets: connect.addr is inside none of them
	numCmpOps
)

// cmpOpNames are the operators' names as written in policies.
var cmpOpNames = [numCmpOps]string{
	"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "range", "not_range",
	"masked", "has_all", "has_any", "has_none", "cidr", "not_cidr",
}

// String returns the operator's name as written in policies ("not_in").
func (o CmpOp) String() string {
	if o < numCmpOps {
		return cmpOpNames[o]
	}
	return fmt.Sprintf("CmpOp(%d)", uint8(o))
}

// CmpOps returns every operator, in declaration order.
func CmpOps() []CmpOp {
	ops := make([]CmpOp, numCmpOps)
	for i := range ops {
		ops[i] = CmpOp(i)
	}
	return ops
}

// LookupCmpOp finds an operator by its policy name.
func LookupCmpOp(name string) (CmpOp, bool) {
	for i, n := range cmpOpNames {
		if n == name {
			return CmpOp(i), true
		}
	}
	return 0, false
}

// Cond is one condition on one field of the request.
type Cond struct {
	// Field is the policy field name: user_data, sqe_flags,
	// socket.family, socket.type, socket.protocol, open.flags, open.mode,
	// open.resolve, connect.family, connect.port or connect.addr
	// (see Fields).
	Field string
	// Op is the operator.
	Op CmpOp
	// Values are the operands of numeric operators (see CmpOp), already
	// within the field's width and, for set and bit operators, free of the
	// bits normalisation ignores.
	Values []uint64
	// Nets are the prefixes of CIDR and NotCIDR, masked (no host bits).
	Nets []netip.Prefix
	// Pos is where the operator (or the shorthand value) was written.
	Pos Pos
}

// Request is what a filter is asked about: one SQE after the kernel's
// preparation, as the context shows it. Values are raw, as the kernel
// reports them (socket.type may carry SOCK_NONBLOCK, open.flags carries
// O_LARGEFILE); the evaluator normalises them.
type Request struct {
	Op       abi.Opcode
	UserData uint64
	SQEFlags uint8
	Socket   abi.SocketData  // for SOCKET
	Open     abi.OpenData    // for OPENAT and OPENAT2
	Connect  abi.ConnectData // for CONNECT (Linux 7.2+)
}

// Decision is the evaluator's answer for one request.
type Decision struct {
	// Allow is true when the request may run.
	Allow bool
	// Rule is the index in Policy.Rules of the rule that decided, or -1
	// when the default did.
	Rule int
}

// Action returns the decision as an Action.
func (d Decision) Action() Action {
	if d.Allow {
		return Allow
	}
	return Deny
}

// Ctx returns the context the kernel's filter sees for r, in byte order bo:
// user_data, opcode, sqe_flags, and for SOCKET, OPENAT, OPENAT2 and CONNECT
// the per-opcode data and its pdu_size (the CONNECT data exists only on
// Linux 7.2 and later; an older kernel shows pdu_size 0 and zeros, which
// CtxFor gives). For an AF_INET CONNECT only the first 4 address bytes are
// kept, as the kernel stores them; the rest are zero.
func (r Request) Ctx(bo binary.ByteOrder) abi.Ctx {
	c := abi.Ctx{UserData: r.UserData, Opcode: uint8(r.Op), SQEFlags: r.SQEFlags}
	switch opView(r.Op) {
	case abi.ViewSocket:
		c.SetSocket(r.Socket, bo)
	case abi.ViewOpen:
		c.SetOpen(r.Open, bo)
	case abi.ViewConnect:
		d := r.Connect
		if d.Family == AFInet {
			clear(d.Addr[4:])
		}
		c.SetConnect(d, bo)
	}
	return c
}

// CtxFor is Ctx for kernel k: opcodes whose data k does not pass to
// filters (CONNECT before 7.2) get pdu_size 0 and zero data.
func (r Request) CtxFor(bo binary.ByteOrder, k abi.Version) abi.Ctx {
	c := r.Ctx(bo)
	if info, ok := r.Op.Info(); ok && !info.HasData(k) {
		c.PDUSize = 0
		c.PDU = [24]byte{}
	}
	return c
}

// Address families the evaluator needs by value.
const (
	AFInet  = 2  // AF_INET
	AFInet6 = 10 // AF_INET6
)
