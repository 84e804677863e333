package seccompprofile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// Note is something Derive could not carry over exactly, or a decision it
// made that a reader should know of: at the profile entry concerned (or the
// default action), for an opcode.
type Note struct {
	Pos     policy.Pos
	Op      abi.Opcode
	Syscall string
	Msg     string
}

// String returns "file:line:col: OP (syscall): message".
func (n Note) String() string {
	s := n.Op.String()
	if n.Syscall != "" {
		s += " (" + n.Syscall + ")"
	}
	return n.Pos.String() + ": " + s + ": " + n.Msg
}

// Derivation is what Derive returns: the policy and its notes.
type Derivation struct {
	Policy *policy.Policy
	// Notes, sorted by position then opcode.
	Notes []Note
	// Options are the container facts used (defaults filled in).
	Options Options
}

// Derive returns the io_uring policy that denies through the ring what the
// profile denies as system calls, for the container opts describes
// (docs/seccomp.md):
//
//   - An opcode is allowed when the profile allows every system call it
//     stands for (Table); SOCKET and OPENAT keep the profile's conditions on
//     the arguments filters see (socket family, type and protocol; open
//     flags and mode), as rules: the profile's denying entries first (the
//     most restrictive entry decides), then its allowing ones.
//   - A condition on an argument filters do not see (a path, an address, a
//     descriptor, OPENAT2's open_how) cannot be kept: a denying entry with
//     one denies more widely (the condition is dropped), an allowing entry
//     with one is left out (the request is denied); each is a Note.
//   - Opcodes with no system-call counterpart get the decision of Table
//     (ring-internal operations allowed; URING_CMD denied).
//   - The profile's io_uring_setup, io_uring_enter and io_uring_register
//     entries (or its default action for them) play no part: they decide
//     whether the container may use io_uring at all, which is what the
//     container shim opens for fenced containers, not what requests may do.
//
// The policy's default is deny, so opcodes of kernels newer than the table
// are denied.
func (p *Profile) Derive(opts Options) (*Derivation, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	entries, _ := p.Effective(o)
	d := &Derivation{Options: o}
	pol := &policy.Policy{Version: policy.Version, Default: policy.Deny, File: "from-seccomp"}
	pol.Name = "derived from seccomp profile " + p.File
	pol.Comment = fmt.Sprintf("io_uring policy derived by ringfence from-seccomp from %s for runtime %s, capabilities %s, architecture %s, kernel %s: "+
		"denies through the ring what the profile denies as system calls (docs/seccomp.md)",
		p.File, o.Runtime, strings.Join(o.Caps, ","), o.Arch, o.Kernel)
	if opts.Caps != nil {
		pol.Comment = strings.Replace(pol.Comment, "runtime "+o.Runtime+", ", "", 1)
	}
	var ringOps, callOps []abi.Opcode
	var dataRules []policy.Rule
	for _, m := range Table() {
		switch {
		case len(m.Syscalls) == 0 && m.Fixed == policy.Allow:
			ringOps = append(ringOps, m.Op)
		case len(m.Syscalls) == 0:
			d.note(policy.Pos{File: p.File}, m.Op, "", "denied: %s", m.Why)
		case m.Fields != nil:
			rules := d.dataRules(p, entries, m)
			if len(rules) == 1 && rules[0].Action == policy.Allow && len(rules[0].Conds) == 0 {
				callOps = append(callOps, m.Op) // allowed whatever its arguments
				continue
			}
			dataRules = append(dataRules, rules...)
		default:
			if d.plainAllowed(p, entries, m) {
				callOps = append(callOps, m.Op)
			}
		}
	}
	if len(ringOps) > 0 {
		pol.Rules = append(pol.Rules, policy.Rule{Name: "ring-internal operations", Ops: ringOps, Action: policy.Allow,
			Comment: "no system-call counterpart: no-ops, timers, cancellation, buffers, registered files, MSG_RING"})
	}
	if len(callOps) > 0 {
		pol.Rules = append(pol.Rules, policy.Rule{Name: "system calls the profile allows", Ops: callOps, Action: policy.Allow,
			Comment: "for each group of system calls these opcodes stand for, the profile allows one whatever its arguments"})
	}
	pol.Rules = append(pol.Rules, dataRules...)
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("derived policy is invalid (a bug in from-seccomp): %w", err)
	}
	d.Policy = pol
	sort.SliceStable(d.Notes, func(i, j int) bool {
		a, b := d.Notes[i], d.Notes[j]
		if a.Pos != b.Pos {
			return a.Pos.Before(b.Pos)
		}
		return a.Op < b.Op
	})
	return d, nil
}

func (d *Derivation) note(pos policy.Pos, op abi.Opcode, call, format string, args ...any) {
	d.Notes = append(d.Notes, Note{Pos: pos, Op: op, Syscall: call, Msg: fmt.Sprintf(format, args...)})
}

// entryPos returns where e was written, or the default action's place.
func entryPos(p *Profile, e *Entry) policy.Pos {
	if e == nil {
		return p.DefaultPos
	}
	return e.Pos
}

// plainAllowed decides an opcode whose arguments filters do not see: each
// group of its system calls must have one the profile allows whatever its
// arguments. A group with none gets a note for each of its calls.
func (d *Derivation) plainAllowed(p *Profile, entries []Entry, m Mapping) bool {
	ok := true
	for _, group := range m.Syscalls {
		answers := make([]Answer, len(group))
		allowed := false
		for i, call := range group {
			answers[i] = decide(entries, p.DefaultAction, Call{Name: call})
			allowed = allowed || answers[i].Verdict == Allowed
		}
		if allowed {
			continue
		}
		for i, call := range group {
			d.noteDenied(p, m.Op, call, answers[i])
		}
		ok = false
	}
	return ok
}

// noteDenied notes why the profile's answer a for call denies op.
func (d *Derivation) noteDenied(p *Profile, op abi.Opcode, call string, a Answer) {
	switch a.Verdict {
	case Denied:
		if a.Entry != nil {
			d.note(entryPos(p, a.Entry), op, call, "denied: the profile denies %s (%s)", call, a.Entry.Action)
		} else {
			d.note(entryPos(p, nil), op, call, "denied: the profile's default action (%s) denies %s", p.DefaultAction, call)
		}
	case Unknown:
		what := "denies"
		if a.Entry.Action.Allows() {
			what = "allows only"
		}
		d.note(entryPos(p, a.Entry), op, call, "denied: the profile %s %s when %s, and io_uring filters do not see argument %d of %s",
			what, call, argList(a.Entry.Args), a.Unseen, call)
	}
}

func argList(args []Arg) string {
	var parts []string
	for _, a := range args {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " and ")
}

// dataRules turns the profile's entries for the system call of an opcode
// whose arguments filters see (SOCKET, OPENAT) into policy rules: denying
// entries first, then allowing ones, then an allow for a default that
// allows.
func (d *Derivation) dataRules(p *Profile, entries []Entry, m Mapping) []policy.Rule {
	call := m.Syscalls[0][0]
	var denies, allows []policy.Rule
	for i := range entries {
		e := &entries[i]
		if !e.names(call) {
			continue
		}
		r := policy.Rule{Ops: []abi.Opcode{m.Op}, Action: policy.Deny,
			Name: fmt.Sprintf("%s: %s", call, e.Pos), Comment: e.String()}
		if e.Action.Allows() {
			r.Action = policy.Allow
		}
		keep := true
		for _, a := range e.Args {
			field, seen := m.Fields[a.Index]
			if !seen {
				if r.Action == policy.Deny {
					d.note(e.Pos, m.Op, call, "the profile denies %s when %s; io_uring filters do not see argument %d, so %s is denied without that condition",
						call, argList(e.Args), a.Index, m.Op)
					continue
				}
				d.note(e.Pos, m.Op, call, "the profile allows %s when %s; io_uring filters do not see argument %d, so this allow is left out",
					call, argList(e.Args), a.Index)
				keep = false
				break
			}
			c, always, never, why := translate(a, field, r.Action)
			switch {
			case why != "" && r.Action == policy.Deny:
				d.note(a.Pos, m.Op, call, "%s: %s; the condition is dropped, so the deny is wider", a, why)
			case why != "":
				d.note(a.Pos, m.Op, call, "%s: %s; this allow is left out", a, why)
				keep = false
			case never:
				keep = false // the entry can never match a request
			case always:
			default:
				r.Conds = append(r.Conds, c)
				if field == "socket.type" && (a.Op == OpEq || a.Op == OpNe) {
					d.note(a.Pos, m.Op, call, "%s: kept as %s, which a policy compares without SOCK_NONBLOCK and SOCK_CLOEXEC: "+
						"the ring %s types with those flags, which the profile does not", a, c, map[bool]string{true: "denies", false: "also denies"}[r.Action == policy.Allow])
				}
			}
			if !keep {
				break
			}
		}
		if !keep {
			continue
		}
		if r.Action == policy.Deny {
			denies = append(denies, r)
		} else {
			allows = append(allows, r)
		}
	}
	rules := append(denies, allows...)
	if p.DefaultAction.Allows() {
		rules = append(rules, policy.Rule{Ops: []abi.Opcode{m.Op}, Action: policy.Allow, Name: call + ": default action",
			Comment: fmt.Sprintf("the profile's default action %s (%s) allows %s", p.DefaultAction, p.DefaultPos, call)})
	}
	return rules
}

// translate turns a seccomp argument condition into a policy condition on
// field. always or never report a condition that holds for every or no
// value of the field's width; why explains one the policy cannot state
// (bits the policy's normalisation ignores, values wider than the field).
//
// socket.type needs care: seccomp sees the type with SOCK_NONBLOCK and
// SOCK_CLOEXEC as the caller passed them, a policy compares it without
// them. An allowing "type == SOCK_STREAM" would let SOCK_STREAM|SOCK_CLOEXEC
// through the ring, which the profile denies, and a denying "type !=
// SOCK_STREAM" would not deny it; both are reported instead. (O_LARGEFILE
// in open.flags needs no such care: the kernel forces it for every open
// on 64-bit machines, so a call with or without it has the same effect.)
func translate(a Arg, field string, act policy.Action) (c policy.Cond, always, never bool, why string) {
	f, _ := policy.LookupField(field)
	max, ign := f.Max(), f.Ignore
	c = policy.Cond{Field: field, Pos: a.Pos}
	switch a.Op {
	case OpEq, OpNe:
		if a.Value > max {
			return c, a.Op == OpNe, a.Op == OpEq, ""
		}
		if a.Value&ign != 0 {
			return c, false, false, fmt.Sprintf("%s in a policy never carries %s", field, ignoredNames(field))
		}
		if field == "socket.type" && (a.Op == OpEq) == (act == policy.Allow) {
			return c, false, false, fmt.Sprintf("seccomp compares the type with SOCK_NONBLOCK and SOCK_CLOEXEC, a policy without them, so %s cannot be kept exactly", a)
		}
		c.Op, c.Values = policy.Eq, []uint64{a.Value}
		if a.Op == OpNe {
			c.Op = policy.Ne
		}
	case OpLt, OpLe, OpGt, OpGe:
		v := a.Value
		switch {
		case a.Op == OpLt && v > max, a.Op == OpLe && v >= max, a.Op == OpGe && v == 0:
			return c, true, false, ""
		case a.Op == OpGt && v >= max, a.Op == OpGe && v > max, a.Op == OpLt && v == 0:
			return c, false, true, ""
		}
		if ign != 0 {
			return c, false, false, fmt.Sprintf("an ordering on %s compares the value without %s in a policy, with them in seccomp", field, ignoredNames(field))
		}
		c.Op = map[Op]policy.CmpOp{OpLt: policy.Lt, OpLe: policy.Le, OpGt: policy.Gt, OpGe: policy.Ge}[a.Op]
		c.Values = []uint64{v}
	case OpMaskedEq:
		mask, val := a.Value&max, a.ValueTwo
		if a.ValueTwo&^a.Value != 0 || val > max {
			return c, false, true, ""
		}
		if mask&ign != 0 {
			return c, false, false, fmt.Sprintf("%s in a policy never carries %s", field, ignoredNames(field))
		}
		if mask == 0 {
			return c, val == 0, val != 0, ""
		}
		c.Op, c.Values = policy.Masked, []uint64{mask, val}
	default:
		return c, false, false, "unknown comparison " + string(a.Op)
	}
	return c, false, false, ""
}

// ignoredNames names the bits policy normalisation clears in field.
func ignoredNames(field string) string {
	switch field {
	case "socket.type":
		return "SOCK_NONBLOCK or SOCK_CLOEXEC"
	case "open.flags":
		return "O_LARGEFILE"
	}
	return fmt.Sprintf("%#x", policy.IgnoredBits(field))
}
