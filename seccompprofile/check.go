package seccompprofile

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ringfence/ringfence/abi"

	"github.com/ringfence/ringfence/policy"
)

// Bypass is a request an io_uring policy allows while the seccomp profile
// would deny the system call it stands for: the ring would let the
// container do what seccomp stops.
type Bypass struct {
	// Request is an example: the first one found for this pair of rules.
	Request policy.Request
	// Examples are Request and, for SOCKET and OPENAT, the first request
	// found for each other socket family or open flags value, up to 16:
	// the pair of rules can hide several kinds of request (AF_ALG and
	// AF_VSOCK sockets under one default action).
	Examples []policy.Request
	// Rule is the index of the policy rule that allows it (-1: the
	// policy's default).
	Rule int
	// PolicyRule describes it ("rule 2 (\"sockets\") at line 9").
	PolicyRule string
	// Syscall is the system call the profile denies (of a group of
	// equivalent calls none of which it allows, the first: Mapping).
	Syscall string
	// Verdict is Denied, or Unknown when the profile's answer depends on
	// an argument the request does not show (reported too: the policy
	// cannot know it is safe).
	Verdict Verdict
	// Entry is the profile entry that denies (nil: its default action);
	// ProfileRule describes it.
	Entry       *Entry
	ProfileRule string
}

// String returns one line: the example request, then both sides.
func (b Bypass) String() string {
	v := "denies"
	if b.Verdict == Unknown {
		v = "may deny"
	}
	also := ""
	if len(b.Examples) > 1 {
		var vals []string
		for _, r := range b.Examples[1:] {
			vals = append(vals, exampleKey(r))
		}
		also = " (also " + strings.Join(vals, ", ") + ")"
	}
	return fmt.Sprintf("%s%s: allowed by %s, but the seccomp profile %s %s: %s", b.Request, also, b.PolicyRule, v, b.Syscall, b.ProfileRule)
}

// exampleKey names what distinguishes examples of one bypass: the socket
// family of a SOCKET request, the open flags of an OPENAT request.
func exampleKey(r policy.Request) string {
	switch r.Op {
	case abi.OpSocket:
		f, _ := policy.LookupField("socket.family")
		return "socket.family=" + policy.FormatValue(f, uint64(r.Socket.Family))
	case abi.OpOpenat:
		f, _ := policy.LookupField("open.flags")
		return "open.flags=" + policy.FormatValue(f, r.Open.Flags)
	}
	return ""
}

// maxExamples bounds Bypass.Examples.
const maxExamples = 16

// Check reports the requests pol allows that the profile, for the
// container opts describes, denies as system calls (docs/seccomp.md). Each
// pair of a policy rule and a profile rule is reported once, with an
// example request. The requests tried are the boundaries of both sides:
// every constant either side compares a field with, its neighbours, the
// bits they test (every combination when at most 10 bits; with at most 6,
// also the nearest values on either side of each boundary with each
// combination), with and without the flags the kernel adds (SOCK_NONBLOCK,
// SOCK_CLOEXEC, O_LARGEFILE). A property test checks, on random profiles
// and policies, that every bypassing request met is reported.
//
// Opcodes with no system-call counterpart (Table) are not checked: no
// system call is bypassed through them; the policy linter reports risky
// ones (URING_CMD).
func Check(prof *Profile, pol *policy.Policy, opts Options) ([]Bypass, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	entries, _ := prof.Effective(o)
	var out []Bypass
	type key struct {
		rule    int
		call    string
		entry   *Entry
		verdict Verdict
	}
	seen := map[key]int{} // index in out
	for _, m := range Table() {
		if len(m.Syscalls) == 0 {
			continue
		}
		for _, r := range candidates(pol, entries, m) {
			d := pol.Decide(r)
			if !d.Allow {
				continue
			}
			for _, group := range m.Syscalls {
				a := groupAnswer(entries, prof.DefaultAction, group, m.Fields, r)
				if a.Verdict == Allowed {
					continue
				}
				call := group[0]
				k := key{d.Rule, call, a.Entry, a.Verdict}
				if i, ok := seen[k]; ok {
					out[i].addExample(r)
					continue
				}
				seen[k] = len(out)
				b := Bypass{Request: r, Examples: []policy.Request{r}, Rule: d.Rule, PolicyRule: pol.Describe(d), Syscall: call, Verdict: a.Verdict, Entry: a.Entry}
				if a.Entry != nil {
					b.ProfileRule = a.Entry.String()
					if a.Verdict == Unknown {
						b.ProfileRule += fmt.Sprintf("; io_uring filters do not see argument %d", a.Unseen)
					}
				} else {
					b.ProfileRule = fmt.Sprintf("defaultAction %s (%s)", prof.DefaultAction, prof.DefaultPos)
				}
				out = append(out, b)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Request.Op < out[j].Request.Op })
	return out, nil
}

// groupAnswer is how the profile answers request r made as the system
// calls of group, whose arguments fields names: any call of the group the
// profile allows covers it; otherwise the answer is the first call's.
func groupAnswer(entries []Entry, def Action, group []string, fields map[int]string, r policy.Request) Answer {
	var first Answer
	for i, name := range group {
		c := Call{Name: name}
		for idx, field := range fields {
			c.Args[idx], c.Known[idx] = syscallArg(r, field), true
		}
		ans := decide(entries, def, c)
		if ans.Verdict == Allowed {
			return ans
		}
		if i == 0 {
			first = ans
		}
	}
	return first
}

// addExample adds r to b's examples unless it has maxExamples already, r
// has no example key, or an example with r's key is there.
func (b *Bypass) addExample(r policy.Request) {
	kk := exampleKey(r)
	if kk == "" || len(b.Examples) >= maxExamples {
		return
	}
	for _, x := range b.Examples {
		if exampleKey(x) == kk {
			return
		}
	}
	b.Examples = append(b.Examples, r)
}

// syscallArg returns the system-call argument that a request's field
// stands for: the value as the caller passed it, which for open.flags is
// without the O_LARGEFILE the kernel adds.
func syscallArg(r policy.Request, field string) uint64 {
	switch field {
	case "socket.family":
		return uint64(r.Socket.Family)
	case "socket.type":
		return uint64(r.Socket.Type)
	case "socket.protocol":
		return uint64(r.Socket.Protocol)
	case "open.flags":
		return r.Open.Flags &^ policy.OpenFlagsIgnore
	case "open.mode":
		return r.Open.Mode
	}
	return 0
}

// maxCandidates bounds the requests tried per opcode.
const maxCandidates = 1 << 16

// candidates returns the requests tried for m's opcode: the product of
// each field's boundary values, or, when that is too many, each field's
// values with the others at their first value.
func candidates(pol *policy.Policy, entries []Entry, m Mapping) []policy.Request {
	op := m.Op
	var fields []string
	for _, f := range policy.Fields() {
		if policy.FieldApplies(op, f.Name) {
			fields = append(fields, f.Name)
		}
	}
	vals := map[string][]uint64{}
	var addrs []netip.Addr
	for _, f := range fields {
		spec, _ := policy.LookupField(f)
		set := map[uint64]bool{0: true}
		var bits uint64
		add := func(v uint64) {
			if v <= spec.Max() {
				set[v] = true
			}
		}
		near := func(v uint64) {
			add(v)
			if v > 0 {
				add(v - 1)
			}
			if v < spec.Max() {
				add(v + 1)
			}
		}
		for _, r := range pol.Rules {
			if !r.Names(op) {
				continue
			}
			for _, c := range r.Conds {
				if c.Field != f {
					continue
				}
				for _, n := range c.Nets {
					addrs = append(addrs, n.Addr(), lastAddr(n))
					if p := n.Addr().Prev(); p.IsValid() {
						addrs = append(addrs, p)
					}
					if p := lastAddr(n).Next(); p.IsValid() {
						addrs = append(addrs, p)
					}
				}
				switch c.Op {
				case policy.HasAll, policy.HasAny, policy.HasNone:
					bits |= c.Values[0]
					add(c.Values[0])
					add(spec.Max() &^ c.Values[0])
				case policy.Masked:
					bits |= c.Values[0]
					add(c.Values[1])
					add(c.Values[1] | spec.Max()&^c.Values[0])
				default:
					for _, v := range c.Values {
						near(v)
					}
				}
			}
		}
		for idx, field := range m.Fields {
			if field != f {
				continue
			}
			for _, e := range entries {
				if !e.names(m.Syscalls[0][0]) {
					continue
				}
				for _, a := range e.Args {
					if a.Index != idx {
						continue
					}
					if a.Op == OpMaskedEq {
						bits |= a.Value & spec.Max()
						add(a.ValueTwo)
						add(a.ValueTwo | spec.Max()&^a.Value)
					} else {
						near(a.Value)
					}
				}
			}
		}
		// Orderings meet bit tests: for each ordering boundary, the nearest
		// values on either side with each pattern of the tested bits.
		if n := popcount(bits); n > 0 && n <= 6 {
			var bounds []uint64
			for v := range set {
				bounds = append(bounds, v)
			}
			for _, c := range bounds {
				for sub := bits; ; sub = (sub - 1) & bits {
					if v, ok := upWith(c, bits, sub, spec.Max()); ok {
						add(v)
					}
					if v, ok := downWith(c, bits, sub); ok {
						add(v)
					}
					if sub == 0 {
						break
					}
				}
			}
		}
		for b := uint64(1); b != 0 && b <= bits; b <<= 1 {
			if bits&b != 0 {
				add(b)
			}
		}
		if n := popcount(bits); n > 0 && n <= 10 {
			for sub := bits; ; sub = (sub - 1) & bits {
				add(sub)
				if sub == 0 {
					break
				}
			}
		}
		// The flags the kernel shows beside what policies compare.
		if spec.Ignore != 0 {
			for v := range set {
				add(v | spec.Ignore)
			}
		}
		list := make([]uint64, 0, len(set))
		for v := range set {
			list = append(list, v)
		}
		sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
		vals[f] = list
	}
	if len(addrs) == 0 || !policy.FieldApplies(op, "connect.addr") {
		addrs = append(addrs, netip.MustParseAddr("0.0.0.0"))
	}
	total := len(addrs)
	for _, f := range fields {
		if f != "connect.addr" {
			total *= len(vals[f])
		}
	}
	base := policy.Request{Op: op}
	var out []policy.Request
	if total <= maxCandidates {
		out = []policy.Request{base}
		for _, f := range fields {
			if f == "connect.addr" {
				continue
			}
			var next []policy.Request
			for _, r := range out {
				for _, v := range vals[f] {
					next = append(next, setField(r, f, v))
				}
			}
			out = next
		}
	} else {
		for _, f := range fields {
			if f == "connect.addr" {
				continue
			}
			for _, v := range vals[f] {
				out = append(out, setField(base, f, v))
			}
		}
	}
	if policy.FieldApplies(op, "connect.addr") {
		var next []policy.Request
		for _, r := range out {
			for _, a := range addrs {
				next = append(next, setAddr(r, a))
			}
		}
		out = next
	}
	return out
}

func popcount(v uint64) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// setField returns r with its field f set to v.
func setField(r policy.Request, f string, v uint64) policy.Request {
	r.SetField(f, v)
	return r
}

// setAddr sets the connect address and, unless the request already names
// a family, the family that goes with it.
func setAddr(r policy.Request, a netip.Addr) policy.Request {
	if a.Is4() {
		b := a.As4()
		r.Connect.Addr = [16]byte{}
		copy(r.Connect.Addr[:], b[:])
		if r.Connect.Family == 0 {
			r.Connect.Family = policy.AFInet
		}
	} else {
		r.Connect.Addr = a.As16()
		if r.Connect.Family == 0 {
			r.Connect.Family = policy.AFInet6
		}
	}
	return r
}

// upWith returns the smallest v >= c with v&bits == sub (sub within bits),
// if there is one no larger than max.
func upWith(c, bits, sub, max uint64) (uint64, bool) {
	free := c &^ bits
	if x := free | sub; x >= c {
		return x, x <= max
	}
	next := ((free | bits) + 1) &^ bits // the next value of the other bits
	if next == 0 {
		return 0, false
	}
	x := next | sub
	return x, x <= max
}

// downWith returns the largest v <= c with v&bits == sub, if there is one.
func downWith(c, bits, sub uint64) (uint64, bool) {
	free := c &^ bits
	if x := free | sub; x <= c {
		return x, true
	}
	if free == 0 {
		return 0, false
	}
	return ((free - 1) &^ bits) | sub, true
}
