package policy

import (
	"net/netip"

	"github.com/ringfence/ringfence/abi"
)

// FieldSpec describes a field a policy condition may test.
type FieldSpec struct {
	// Name is the policy name, also the abi field name ("socket.type").
	Name string
	// Bits is the width of the value a policy compares: 8, 16, 32 or 64;
	// 128 for connect.addr, which only takes cidr and not_cidr.
	Bits int
	// View is the per-opcode view the field belongs to; abi.ViewCommon
	// fields exist for every opcode.
	View abi.View
	// Group is the constant group names are looked up in ("" for numbers
	// only).
	Group abi.Group
	// Ignore holds the bits normalisation clears before any comparison
	// (see Normalize).
	Ignore uint64
	// Since is the first kernel whose filters see the field.
	Since abi.Version
}

// Max returns the largest value of the field's width.
func (f FieldSpec) Max() uint64 {
	if f.Bits >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<f.Bits - 1
}

// IsAddr reports whether the field is connect.addr, which is compared with
// prefixes rather than numbers.
func (f FieldSpec) IsAddr() bool { return f.Name == "connect.addr" }

// Normalisation masks, applied identically by the evaluator and the compiler.
const (
	// SockTypeIgnore is SOCK_NONBLOCK|SOCK_CLOEXEC: kernels differ on
	// whether filters see them in socket.type, so policies never do.
	SockTypeIgnore = 0o4000 | 0o2000000
	// OpenFlagsIgnore is O_LARGEFILE, which the kernel adds to open.flags
	// on 64-bit machines whatever the caller passed.
	OpenFlagsIgnore = 0o100000
)

// fieldNamesInOrder lists the policy fields in documentation order.
func fieldNamesInOrder() []string {
	return []string{"user_data", "sqe_flags", "socket.family", "socket.type", "socket.protocol",
		"open.flags", "open.mode", "open.resolve", "connect.family", "connect.port", "connect.addr"}
}

// Fields returns the fields a policy may test, in documentation order.
// The slice is freshly allocated on each call.
func Fields() []FieldSpec {
	names := fieldNamesInOrder()
	out := make([]FieldSpec, len(names))
	for i, n := range names {
		out[i], _ = LookupField(n)
	}
	return out
}

// LookupField returns the policy field with the given name. It does not
// allocate: the evaluator calls it for every condition.
func LookupField(name string) (FieldSpec, bool) {
	v70 := abi.Version{Major: 7, Minor: 0}
	v72 := abi.Version{Major: 7, Minor: 2}
	switch name {
	case "user_data":
		return FieldSpec{Name: name, Bits: 64, View: abi.ViewCommon, Since: v70}, true
	case "sqe_flags":
		return FieldSpec{Name: name, Bits: 8, View: abi.ViewCommon, Group: abi.GroupSQE, Since: v70}, true
	case "socket.family":
		return FieldSpec{Name: name, Bits: 32, View: abi.ViewSocket, Group: abi.GroupFamily, Since: v70}, true
	case "socket.type":
		return FieldSpec{Name: name, Bits: 32, View: abi.ViewSocket, Group: abi.GroupSockType, Ignore: SockTypeIgnore, Since: v70}, true
	case "socket.protocol":
		return FieldSpec{Name: name, Bits: 32, View: abi.ViewSocket, Group: abi.GroupProto, Since: v70}, true
	case "open.flags":
		return FieldSpec{Name: name, Bits: 64, View: abi.ViewOpen, Group: abi.GroupOpen, Ignore: OpenFlagsIgnore, Since: v70}, true
	case "open.mode":
		return FieldSpec{Name: name, Bits: 64, View: abi.ViewOpen, Group: abi.GroupMode, Since: v70}, true
	case "open.resolve":
		return FieldSpec{Name: name, Bits: 64, View: abi.ViewOpen, Group: abi.GroupResolve, Since: v70}, true
	case "connect.family":
		return FieldSpec{Name: name, Bits: 32, View: abi.ViewConnect, Group: abi.GroupFamily, Since: v72}, true
	case "connect.port":
		return FieldSpec{Name: name, Bits: 16, View: abi.ViewConnect, Since: v72}, true
	case "connect.addr":
		return FieldSpec{Name: name, Bits: 128, View: abi.ViewConnect, Since: v72}, true
	}
	return FieldSpec{}, false
}

// opView returns the per-opcode data view of op, as abi.Opcodes() records
// it (a test keeps the two in step), without allocating the table.
func opView(op abi.Opcode) abi.View {
	switch op {
	case abi.OpSocket:
		return abi.ViewSocket
	case abi.OpOpenat, abi.OpOpenat2:
		return abi.ViewOpen
	case abi.OpConnect:
		return abi.ViewConnect
	}
	return abi.ViewCommon
}

// FieldApplies reports whether op's filter sees field: common fields exist
// for every opcode, the others only for the opcodes of their view.
func FieldApplies(op abi.Opcode, field string) bool {
	f, ok := LookupField(field)
	if !ok {
		return false
	}
	return f.View == abi.ViewCommon || (int(op) < abi.OpLast && opView(op) == f.View)
}

// IgnoredBits returns the bits normalisation clears in field's values:
// SockTypeIgnore for socket.type, OpenFlagsIgnore for open.flags, else 0.
func IgnoredBits(field string) uint64 {
	f, _ := LookupField(field)
	return f.Ignore
}

// Normalize returns v as conditions on field see it: with IgnoredBits
// cleared.
func Normalize(field string, v uint64) uint64 {
	return v &^ IgnoredBits(field)
}

// FieldValue returns the normalised value of a numeric field of r. ok is
// false for connect.addr (use Cond.HoldsAddr), for unknown fields and for
// fields r's opcode does not have.
func FieldValue(r Request, field string) (v uint64, ok bool) {
	if !FieldApplies(r.Op, field) {
		return 0, false
	}
	switch field {
	case "user_data":
		v = r.UserData
	case "sqe_flags":
		v = uint64(r.SQEFlags)
	case "socket.family":
		v = uint64(r.Socket.Family)
	case "socket.type":
		v = uint64(r.Socket.Type)
	case "socket.protocol":
		v = uint64(r.Socket.Protocol)
	case "open.flags":
		v = r.Open.Flags
	case "open.mode":
		v = r.Open.Mode
	case "open.resolve":
		v = r.Open.Resolve
	case "connect.family":
		v = uint64(r.Connect.Family)
	case "connect.port":
		v = uint64(r.Connect.Port)
	default:
		return 0, false
	}
	return Normalize(field, v), true
}

// Holds reports whether the numeric condition c holds for the normalised
// field value v. CIDR and NotCIDR conditions are not numeric: for them
// Holds returns false (use HoldsAddr).
func (c Cond) Holds(v uint64) bool {
	val := func(i int) uint64 {
		if i < len(c.Values) {
			return c.Values[i]
		}
		return 0
	}
	switch c.Op {
	case Eq:
		return v == val(0)
	case Ne:
		return v != val(0)
	case In:
		for _, x := range c.Values {
			if v == x {
				return true
			}
		}
		return false
	case NotIn:
		for _, x := range c.Values {
			if v == x {
				return false
			}
		}
		return true
	case Lt:
		return v < val(0)
	case Le:
		return v <= val(0)
	case Gt:
		return v > val(0)
	case Ge:
		return v >= val(0)
	case Range:
		return val(0) <= v && v <= val(1)
	case NotRange:
		return v < val(0) || v > val(1)
	case Masked:
		return v&val(0) == val(1)
	case HasAll:
		return v&val(0) == val(0)
	case HasAny:
		return v&val(0) != 0
	case HasNone:
		return v&val(0) == 0
	}
	return false
}

// HoldsAddr reports whether the CIDR or NotCIDR condition c holds for a
// CONNECT to addr of address family family. An IPv4 prefix applies only to
// AF_INET (first 4 bytes of addr), an IPv6 prefix only to AF_INET6 (all 16),
// so for any other family CIDR never holds and NotCIDR always does.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv6 addresses here, as
// they are to the kernel's filter.
func (c Cond) HoldsAddr(family uint32, addr [16]byte) bool {
	in := false
	var a netip.Addr
	switch family {
	case AFInet:
		a = netip.AddrFrom4([4]byte(addr[:4]))
	case AFInet6:
		a = netip.AddrFrom16(addr)
	}
	if a.IsValid() {
		for _, p := range c.Nets {
			if p.Addr().Is4() == a.Is4() && p.Contains(a) {
				in = true
				break
			}
		}
	}
	switch c.Op {
	case CIDR:
		return in
	case NotCIDR:
		return !in
	}
	return false
}

// Eval reports whether c holds for request r. A condition on a field r's
// opcode does not have never holds (Parse rejects such policies).
func (c Cond) Eval(r Request) bool {
	if c.Op == CIDR || c.Op == NotCIDR {
		if !FieldApplies(r.Op, c.Field) || c.Field != "connect.addr" {
			return false
		}
		return c.HoldsAddr(r.Connect.Family, r.Connect.Addr)
	}
	v, ok := FieldValue(r, c.Field)
	return ok && c.Holds(v)
}

// Matches reports whether the rule names q's opcode and all its conditions
// hold for q.
func (r Rule) Matches(q Request) bool {
	if !r.Names(q.Op) {
		return false
	}
	for _, c := range r.Conds {
		if !c.Eval(q) {
			return false
		}
	}
	return true
}

// Decide is the reference evaluator: the rules naming r's opcode are tried
// in order and the first whose conditions all hold decides; if none does,
// the default decides. It follows docs/policy.md literally and uses no BPF.
func (p *Policy) Decide(r Request) Decision {
	for i, rule := range p.Rules {
		if rule.Matches(r) {
			return Decision{Allow: rule.Action == Allow, Rule: i}
		}
	}
	return Decision{Allow: p.Default == Allow, Rule: -1}
}

// Needs returns the oldest kernel that can enforce p: 7.0 for every policy
// (io_uring BPF filters), 7.2 when a condition tests a connect.* field.
func (p *Policy) Needs() abi.Version {
	need := abi.FilterSince()
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			if f, ok := LookupField(c.Field); ok && need.Less(f.Since) {
				need = f.Since
			}
		}
	}
	return need
}

// NeedsWhy returns, when p needs a kernel newer than k, the position and
// field of the first condition that does ("" when k suffices).
func (p *Policy) NeedsWhy(k abi.Version) (Pos, string) {
	for _, r := range p.Rules {
		for _, c := range r.Conds {
			if f, ok := LookupField(c.Field); ok && k.Less(f.Since) {
				return c.Pos, c.Field
			}
		}
	}
	return Pos{}, ""
}

// Ops returns the opcodes the policy names in any rule, in ascending order.
func (p *Policy) Ops() []abi.Opcode {
	var seen [256]bool
	for _, r := range p.Rules {
		for _, o := range r.Ops {
			seen[o] = true
		}
	}
	var ops []abi.Opcode
	for i, s := range seen {
		if s {
			ops = append(ops, abi.Opcode(i))
		}
	}
	return ops
}
