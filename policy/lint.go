package policy

import (
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// Severity ranks a diagnostic. Lint reports only warnings today; errors
// are what Parse returns.
type Severity uint8

// The severities.
const (
	Warning Severity = iota
)

// String returns "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// Diagnostic is one lint finding.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	// Code names the kind of finding, stable for tools: "never-matches",
	// "redundant", "risky-allow", "default-allow", "sqe-flags-equality",
	// "needs-7.2", "ipv4-mapped", "field-not-in-opcode".
	Code    string
	Message string
	// Rule is the index of the rule concerned, -1 for the policy as a whole.
	Rule int
	// Ops are the opcodes a never-matches, redundant or
	// field-not-in-opcode finding is about (nil for other findings).
	Ops []abi.Opcode
}

// String returns "file:line:col: warning: message [code]".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s [%s]", d.Pos, d.Severity, d.Message, d.Code)
}

// Lint returns warnings about a valid policy: rules that can never match
// (shadowed by earlier rules or with contradictory conditions), rules that
// change nothing, risky allows (driver passthrough, packet and raw sockets,
// creating files anywhere, default allow), sqe_flags equality tests, and
// CONNECT conditions that need Linux 7.2. The findings are sound but not
// complete: a rule reported as never matching cannot match, but not every
// such rule is found. The result is sorted by position.
func (p *Policy) Lint() []Diagnostic {
	l := &linter{p: p}
	l.index()
	l.fieldsNotInOpcode()
	live := l.reachability()
	l.redundant(live)
	l.risky()
	l.sqeFlags()
	l.connect()
	l.sendAddress()
	l.multiBit()
	l.ipv4Mapped()
	sort.SliceStable(l.out, func(i, j int) bool {
		a, b := l.out[i], l.out[j]
		if a.Pos != b.Pos {
			return a.Pos.Before(b.Pos)
		}
		return a.Message < b.Message
	})
	return l.out
}

type linter struct {
	p   *Policy
	out []Diagnostic
	// infos[i] is what lint knows about rule i's conditions.
	infos []ruleInfo
	// byOp[op] lists the rules naming op, in order; firstAny[op] is the
	// first of them that matches every op request (no conditions), or
	// -1; last[op][a] is the last rule naming op with action a, or -1.
	byOp     [abi.OpLast][]int
	firstAny [abi.OpLast]int
	last     [abi.OpLast][2]int
}

// The shadowing and redundancy checks compare a rule with at most this many
// earlier (shadowWindow) and later (repeatWindow) rules naming the same
// opcode, besides the first unconditional one, so that linting stays
// near-linear in the number of rules (a 100,000-rule policy lints in
// seconds). Policies with fewer rules per opcode are checked exactly; a
// larger one gets a "lint-bounded" warning saying so.
const (
	shadowWindow = 256
	repeatWindow = 32
)

// index fills infos, byOp, firstAny and last.
func (l *linter) index() {
	l.infos = make([]ruleInfo, len(l.p.Rules))
	for op := range l.firstAny {
		l.firstAny[op] = -1
		l.last[op] = [2]int{-1, -1}
	}
	for i, r := range l.p.Rules {
		l.infos[i] = l.info(r)
		for _, op := range r.Ops {
			if int(op) >= abi.OpLast {
				continue
			}
			l.byOp[op] = append(l.byOp[op], i)
			if len(r.Conds) == 0 && l.firstAny[op] < 0 {
				l.firstAny[op] = i
			}
			if r.Action <= Allow {
				l.last[op][r.Action] = i
			}
		}
	}
	for op, rules := range l.byOp {
		if len(rules) > shadowWindow {
			l.add(Pos{File: l.p.File}, -1, "lint-bounded", "%d rules name %s: the never-matches and redundant checks compare each of them with the nearest %d earlier and %d later rules for it only, and may miss some",
				len(rules), abi.Opcode(op), shadowWindow, repeatWindow)
		}
	}
}

// earlier returns the rules naming op before rule i that the shadowing
// check looks at, in order: the first unconditional one, and the nearest
// shadowWindow others.
func (l *linter) earlier(op abi.Opcode, i int) []int {
	rules := l.byOp[op]
	at := sort.SearchInts(rules, i)
	from := max(0, at-shadowWindow)
	out := rules[from:at]
	if f := l.firstAny[op]; f >= 0 && f < i && (from > 0 && f < rules[from]) {
		out = append([]int{f}, out...)
	}
	return out
}

// later returns the nearest repeatWindow rules naming op after rule i.
func (l *linter) later(op abi.Opcode, i int) []int {
	rules := l.byOp[op]
	at := sort.SearchInts(rules, i+1)
	return rules[at:min(len(rules), at+repeatWindow)]
}

func (l *linter) add(pos Pos, rule int, code, format string, args ...any) {
	l.addOps(pos, rule, nil, code, format, args...)
}

func (l *linter) addOps(pos Pos, rule int, ops []abi.Opcode, code, format string, args ...any) {
	if pos == (Pos{}) {
		pos = Pos{File: l.p.File}
	}
	l.out = append(l.out, Diagnostic{Pos: pos, Severity: Warning, Code: code, Rule: rule, Ops: ops,
		Message: fmt.Sprintf(format, args...)})
}

func (l *linter) label(i int) string { return l.p.Rules[i].Label(i) }

// at returns " (line N)" for rule i, or "" when its line is unknown.
func (l *linter) at(i int) string {
	if n := l.p.Rules[i].Pos.Line; n > 0 {
		return fmt.Sprintf(" (line %d)", n)
	}
	return ""
}

func opList(ops []abi.Opcode) string {
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = o.String()
	}
	return joinAnd(names)
}

// fieldsNotInOpcode reports conditions on fields the rule's opcodes lack
// (Parse rejects these; a policy built in code may have them). Such a
// condition never holds.
func (l *linter) fieldsNotInOpcode() {
	for i, r := range l.p.Rules {
		for _, c := range r.Conds {
			var bad []abi.Opcode
			for _, op := range r.Ops {
				if !FieldApplies(op, c.Field) {
					bad = append(bad, op)
				}
			}
			if len(bad) > 0 {
				l.addOps(c.Pos, i, bad, "field-not-in-opcode", "%s: %s does not exist for %s, so the rule never matches them",
					l.label(i), c.Field, opList(bad))
			}
		}
	}
}

// summary is what the conditions of one rule say about one numeric field.
type summary struct {
	f       FieldSpec
	conds   []Cond
	finite  bool     // the value must be one of set
	set     []uint64 // candidates when finite (already filtered by all conds)
	lo, hi  uint64   // the value is within [lo, hi]
	req     uint64   // bits that must be set
	forb    uint64   // bits that must be clear
	unsat   string   // why no value satisfies the conditions, if known
	anyBits []uint64 // has_any masks: at least one bit of each must be set
}

func summarize(f FieldSpec, conds []Cond) summary {
	s := summary{f: f, conds: conds, lo: 0, hi: f.Max()}
	for _, c := range conds {
		switch c.Op {
		case Eq, In:
			vals := c.Values
			if !s.finite {
				s.finite, s.set = true, append([]uint64(nil), vals...)
			} else {
				var keep []uint64
				for _, v := range s.set {
					if (Cond{Op: In, Values: vals}).Holds(v) {
						keep = append(keep, v)
					}
				}
				s.set = keep
			}
		case Lt:
			if c.Values[0] == 0 {
				s.unsat = fmt.Sprintf("%s < 0 never holds", f.Name)
			} else {
				s.hi = min(s.hi, c.Values[0]-1)
			}
		case Le:
			s.hi = min(s.hi, c.Values[0])
		case Gt:
			if c.Values[0] >= f.Max() {
				s.unsat = fmt.Sprintf("%s > %d never holds (%d bits)", f.Name, c.Values[0], f.Bits)
			} else {
				s.lo = max(s.lo, c.Values[0]+1)
			}
		case Ge:
			s.lo = max(s.lo, c.Values[0])
		case Range:
			if c.Values[0] > c.Values[1] {
				s.unsat = fmt.Sprintf("range [%d, %d] on %s is empty (lo > hi)", c.Values[0], c.Values[1], f.Name)
			}
			s.lo, s.hi = max(s.lo, c.Values[0]), min(s.hi, c.Values[1])
		case NotRange:
			if c.Values[0] == 0 && c.Values[1] >= f.Max() {
				s.unsat = fmt.Sprintf("not_range [0, %d] on %s excludes every value", c.Values[1], f.Name)
			}
		case HasAll:
			s.req |= c.Values[0]
		case HasNone:
			s.forb |= c.Values[0]
		case HasAny:
			if c.Values[0] == 0 {
				s.unsat = fmt.Sprintf("has_any of no bits on %s never holds (a name worth 0, such as O_RDONLY?)", f.Name)
			}
			s.anyBits = append(s.anyBits, c.Values[0])
		case Masked:
			mask, val := c.Values[0], c.Values[1]
			if val&^mask != 0 {
				s.unsat = fmt.Sprintf("masked value %#x has bits outside its mask %#x on %s, so it never holds", val, mask, f.Name)
			}
			s.req |= val & mask
			s.forb |= mask &^ val
		}
	}
	if s.unsat != "" {
		return s
	}
	if s.finite {
		var keep []uint64
		for _, v := range s.set {
			ok := true
			for _, c := range conds {
				if !c.Holds(v) {
					ok = false
					break
				}
			}
			if ok {
				keep = append(keep, v)
			}
		}
		s.set = keep
		if len(keep) == 0 {
			s.unsat = fmt.Sprintf("no value of %s satisfies %s", f.Name, condList(conds))
		}
		return s
	}
	switch {
	case s.lo > s.hi:
		s.unsat = fmt.Sprintf("no value of %s satisfies %s", f.Name, condList(conds))
	case s.req&s.forb != 0:
		s.unsat = fmt.Sprintf("%s must both have and lack bits %s", f.Name, FormatValue(f, s.req&s.forb))
	case s.req > s.hi:
		s.unsat = fmt.Sprintf("%s cannot have bits %s and be at most %d", f.Name, FormatValue(f, s.req), s.hi)
	}
	for _, a := range s.anyBits {
		if s.unsat == "" && a != 0 && a&^s.forb == 0 {
			s.unsat = fmt.Sprintf("%s must have one of %s, but all of them are excluded", f.Name, FormatValue(f, a))
		}
	}
	return s
}

func condList(conds []Cond) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = c.String()
	}
	return strings.Join(parts, " and ")
}

// implies reports whether every value allowed by s satisfies c (sound, not
// complete: false when unsure).
func (s summary) implies(c Cond) bool {
	if s.finite {
		for _, v := range s.set {
			if !c.Holds(v) {
				return false
			}
		}
		return true
	}
	switch c.Op {
	case Lt:
		return s.hi < c.Values[0]
	case Le:
		return s.hi <= c.Values[0]
	case Gt:
		return s.lo > c.Values[0]
	case Ge:
		return s.lo >= c.Values[0]
	case Range:
		return s.lo >= c.Values[0] && s.hi <= c.Values[1]
	case NotRange:
		return s.hi < c.Values[0] || s.lo > c.Values[1]
	case Ne, NotIn:
		for _, v := range c.Values {
			if v >= s.lo && v <= s.hi && !s.excludes(v) {
				return false
			}
		}
		return true
	case HasAll:
		return c.Values[0]&^s.req == 0
	case HasNone:
		return c.Values[0]&^s.forb == 0
	case HasAny:
		return c.Values[0]&s.req != 0
	case Masked:
		mask, val := c.Values[0], c.Values[1]
		return mask&^(s.req|s.forb) == 0 && s.req&mask == val
	}
	return false
}

// excludes reports whether v is ruled out by one of s's own ne/not_in
// conditions or bit conditions.
func (s summary) excludes(v uint64) bool {
	if v&s.req != s.req || v&s.forb != 0 {
		return true
	}
	for _, c := range s.conds {
		if (c.Op == Ne || c.Op == NotIn || c.Op == NotRange) && !c.Holds(v) {
			return true
		}
	}
	return false
}

// ruleInfo is what lint knows about one rule's conditions.
type ruleInfo struct {
	unsat   string
	fields  map[string]summary
	cidr    [][]netip.Prefix // each cidr condition's nets
	notCIDR [][]netip.Prefix
}

func (l *linter) info(r Rule) ruleInfo {
	ri := ruleInfo{fields: map[string]summary{}}
	by := map[string][]Cond{}
	var order []string
	for _, c := range r.Conds {
		switch c.Op {
		case CIDR:
			ri.cidr = append(ri.cidr, c.Nets)
			continue
		case NotCIDR:
			ri.notCIDR = append(ri.notCIDR, c.Nets)
			continue
		}
		if _, ok := by[c.Field]; !ok {
			order = append(order, c.Field)
		}
		by[c.Field] = append(by[c.Field], c)
	}
	for _, name := range order {
		f, _ := LookupField(name)
		s := summarize(f, by[name])
		ri.fields[name] = s
		if ri.unsat == "" && s.unsat != "" {
			ri.unsat = s.unsat
		}
	}
	if ri.unsat == "" {
		ri.unsat = addrUnsat(ri, ri.fields["connect.family"])
	}
	return ri
}

// addrUnsat finds contradictions among connect.addr conditions.
func addrUnsat(ri ruleInfo, fam summary) string {
	for i, a := range ri.cidr {
		// Every prefix of a cidr condition excluded by a not_cidr.
		all := true
		for _, n := range a {
			if !coveredBy(n, ri.notCIDR) {
				all = false
			}
		}
		if all && len(ri.notCIDR) > 0 {
			return "every prefix of connect.addr cidr is inside a not_cidr prefix"
		}
		// Two cidr conditions with no overlap.
		for _, b := range ri.cidr[i+1:] {
			if !anyOverlap(a, b) {
				return "two cidr conditions on connect.addr have no address in common"
			}
		}
		// Families: cidr needs AF_INET or AF_INET6 matching its prefixes.
		if fam.finite {
			ok := false
			for _, n := range a {
				want := uint64(AFInet6)
				if n.Addr().Is4() {
					want = AFInet
				}
				for _, f := range fam.set {
					if f == want {
						ok = true
					}
				}
			}
			if !ok {
				return "connect.family excludes the address family of every cidr prefix"
			}
		}
	}
	return ""
}

// coveredBy reports whether every address of n lies in a prefix of one of
// the lists.
func coveredBy(n netip.Prefix, lists [][]netip.Prefix) bool {
	for _, list := range lists {
		for _, m := range list {
			if m.Addr().Is4() == n.Addr().Is4() && m.Bits() <= n.Bits() && m.Contains(n.Addr()) {
				return true
			}
		}
	}
	return false
}

func anyOverlap(a, b []netip.Prefix) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Addr().Is4() == y.Addr().Is4() && x.Overlaps(y) {
				return true
			}
		}
	}
	return false
}

// subsumes reports whether every request later rule r matches is also
// matched by earlier rule e (for an opcode both name): each of e's
// conditions is implied by r's.
func subsumes(e Rule, r ruleInfo) bool {
	for _, c := range e.Conds {
		switch c.Op {
		case CIDR:
			ok := false
			for _, nets := range r.cidr {
				all := true
				for _, n := range nets {
					if !coveredBy(n, [][]netip.Prefix{c.Nets}) {
						all = false
					}
				}
				if all {
					ok = true
				}
			}
			if !ok {
				return false
			}
			continue
		case NotCIDR:
			ok := false
			for _, nets := range r.cidr {
				if !anyOverlap(nets, c.Nets) {
					ok = true
				}
			}
			for _, nets := range r.notCIDR {
				all := true
				for _, n := range c.Nets {
					if !coveredBy(n, [][]netip.Prefix{nets}) {
						all = false
					}
				}
				if all {
					ok = true
				}
			}
			if !ok {
				return false
			}
			continue
		}
		s, ok := r.fields[c.Field]
		if !ok {
			f, _ := LookupField(c.Field)
			s = summarize(f, nil)
		}
		if !s.implies(c) {
			return false
		}
	}
	return true
}

// reachability reports rules that can never match and returns, per rule,
// the opcodes for which it can.
func (l *linter) reachability() [][]abi.Opcode {
	live := make([][]abi.Opcode, len(l.p.Rules))
	infos := l.infos
	for i, r := range l.p.Rules {
		if r.From != "" {
			// An inherited rule that the extending policy shadows is
			// what overriding means: not worth a warning. Its live
			// opcodes still count for the redundancy check.
			live[i] = l.liveOps(i, infos)
			continue
		}
		if infos[i].unsat != "" {
			l.addOps(r.Pos, i, r.Ops, "never-matches", "%s never matches: %s", l.label(i), infos[i].unsat)
			continue
		}
		type dead struct {
			op abi.Opcode
			by int
		}
		var deads []dead
		for _, op := range r.Ops {
			by := -1
			for _, j := range l.earlier(op, i) {
				if infos[j].unsat == "" && subsumes(l.p.Rules[j], infos[i]) {
					by = j
					break
				}
			}
			if by >= 0 {
				deads = append(deads, dead{op, by})
			} else {
				live[i] = append(live[i], op)
			}
		}
		if len(deads) == 0 {
			continue
		}
		// Group the dead opcodes by the rule that shadows them.
		byRule := map[int][]abi.Opcode{}
		var order []int
		for _, d := range deads {
			if _, ok := byRule[d.by]; !ok {
				order = append(order, d.by)
			}
			byRule[d.by] = append(byRule[d.by], d.op)
		}
		if len(live[i]) == 0 && len(order) == 1 {
			j := order[0]
			l.addOps(r.Pos, i, r.Ops, "never-matches", "%s never matches: %s%s matches every request it would, first",
				l.label(i), l.label(j), l.at(j))
			continue
		}
		for _, j := range order {
			l.addOps(r.Pos, i, byRule[j], "never-matches", "%s never matches for %s: %s%s matches those requests first",
				l.label(i), opList(byRule[j]), l.label(j), l.at(j))
		}
	}
	return live
}

// liveOps returns the opcodes of rule i that no earlier rule shadows
// entirely (empty when its conditions contradict each other).
func (l *linter) liveOps(i int, infos []ruleInfo) []abi.Opcode {
	if infos[i].unsat != "" {
		return nil
	}
	var live []abi.Opcode
	for _, op := range l.p.Rules[i].Ops {
		shadowed := false
		for _, j := range l.earlier(op, i) {
			if infos[j].unsat == "" && subsumes(l.p.Rules[j], infos[i]) {
				shadowed = true
				break
			}
		}
		if !shadowed {
			live = append(live, op)
		}
	}
	return live
}

// redundant reports rules whose removal would change no decision: every
// later rule for the opcode has the same action, and so has the default;
// or a later rule with the same action matches every request this one
// does and no rule between them decides otherwise (in a policy that
// extends others: an own rule that repeats what a base already says).
// Inherited rules are not reported: the extending policy cannot remove
// them.
func (l *linter) redundant(live [][]abi.Opcode) {
	infos := l.infos
	for i, r := range l.p.Rules {
		if r.From != "" {
			continue
		}
		if r.Action != l.p.Default {
			l.repeated(i, live[i], infos)
			continue
		}
		var same []abi.Opcode
		for _, op := range live[i] {
			// No later rule for op decides otherwise.
			if r.Action <= Allow && l.last[op][1-r.Action] < i {
				same = append(same, op)
			}
		}
		if len(same) == 0 {
			continue
		}
		scope := ""
		if len(same) != len(r.Ops) {
			scope = " for " + opList(same)
		}
		l.addOps(r.Pos, i, same, "redundant", "%s changes nothing%s: the default is %s and no later rule for them decides otherwise",
			l.label(i), scope, l.p.Default)
	}
}

// repeated reports the opcodes of rule i for which a later rule with the
// same action matches every request rule i matches, with no rule between
// them (for that opcode) that could decide otherwise: removing rule i
// changes nothing for them. A rule between them with the other action is
// passed over only when it cannot match any request rule i matches.
func (l *linter) repeated(i int, live []abi.Opcode, infos []ruleInfo) {
	r := l.p.Rules[i]
	byRule := map[int][]abi.Opcode{}
	var order []int
	for _, op := range live {
		for _, j := range l.later(op, i) {
			q := l.p.Rules[j]
			if infos[j].unsat != "" {
				continue
			}
			if q.Action != r.Action {
				both := Rule{Ops: []abi.Opcode{op}, Conds: append(append([]Cond(nil), r.Conds...), q.Conds...)}
				if l.info(both).unsat != "" {
					continue // q matches none of rule i's requests
				}
				break
			}
			if subsumes(q, infos[i]) {
				if _, ok := byRule[j]; !ok {
					order = append(order, j)
				}
				byRule[j] = append(byRule[j], op)
				break
			}
		}
	}
	for _, j := range order {
		scope := ""
		if len(byRule[j]) != len(r.Ops) {
			scope = " for " + opList(byRule[j])
		}
		where := l.at(j)
		if l.p.Rules[j].From != "" && l.p.Rules[j].Pos.Line > 0 {
			where = " (" + l.p.Rules[j].Pos.String() + ")"
		}
		l.addOps(r.Pos, i, byRule[j], "redundant", "%s changes nothing%s: %s%s, later, also %ss every request it matches",
			l.label(i), scope, l.label(j), where, r.Action)
	}
}

// decidedBy names who decided d: a rule label or "the default".
func (l *linter) decidedBy(d Decision) (Pos, string) {
	if d.Rule < 0 {
		return l.p.DefaultPos, "default: allow"
	}
	return l.p.Rules[d.Rule].Pos, l.label(d.Rule)
}

// risky reports allows that open a wide door.
func (l *linter) risky() {
	p := l.p
	if p.Default == Allow {
		l.add(p.DefaultPos, -1, "default-allow", "default: allow lets every opcode no rule denies run, "+
			"including ones added after this policy was written; prefer default: deny and list what is needed")
	}
	// Driver passthrough.
	for _, op := range []abi.Opcode{abi.OpUringCmd, abi.OpUringCmd128} {
		d := p.Decide(Request{Op: op})
		if d.Allow {
			pos, who := l.decidedBy(d)
			l.add(pos, d.Rule, "risky-allow", "%s allows %s: driver commands (NVMe, ublk, sockets) that no filter can inspect", who, op)
		}
	}
	// Sockets.
	reported := map[string]bool{}
	report := func(d Decision, what string) {
		if d.Rule < 0 {
			return // the default-allow warning covers it
		}
		key := fmt.Sprintf("%d/%s", d.Rule, what)
		if reported[key] {
			return
		}
		reported[key] = true
		pos, who := l.decidedBy(d)
		l.add(pos, d.Rule, "risky-allow", "%s allows %s", who, what)
	}
	for i, r := range p.Rules {
		if r.Action == Allow && r.Names(abi.OpSocket) && !hasCond(r, "socket.family") {
			key := fmt.Sprintf("%d/any", i)
			reported[key] = true
			l.add(r.Pos, i, "risky-allow", "%s allows SOCKET with any address family (AF_PACKET, AF_NETLINK, ...); "+
				"add a socket.family condition", l.label(i))
		}
	}
	types := []uint64{1, 2, 3, 5}         // STREAM, DGRAM, RAW, SEQPACKET
	protos := []uint64{0, 0x0300, 255, 1} // 0, htons(ETH_P_ALL), IPPROTO_RAW, ICMP
	for _, fam := range []uint32{17, 16} {
		name, _ := abi.ConstName(abi.GroupFamily, uint64(fam))
	probe:
		for _, t := range types {
			for _, pr := range protos {
				d := p.Decide(Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: uint32(t), Protocol: uint32(pr)}})
				if d.Allow && !reported[fmt.Sprintf("%d/any", d.Rule)] {
					report(d, "SOCKET with "+name+" ("+map[uint32]string{17: "raw link-layer packets", 16: "kernel configuration interfaces"}[fam]+")")
					break probe
				}
			}
		}
	}
	for _, fam := range []uint32{AFInet, AFInet6} {
		for _, pr := range []uint64{0, 255, 6, 17} {
			d := p.Decide(Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: 3, Protocol: uint32(pr)}})
			if d.Allow && !reported[fmt.Sprintf("%d/any", d.Rule)] {
				report(d, "SOCKET with SOCK_RAW (raw IP packets)")
				break
			}
		}
	}
	// Creating files with no condition on the open at all.
	creators := map[int][]abi.Opcode{}
	var order []int
	for _, op := range []abi.Opcode{abi.OpOpenat, abi.OpOpenat2} {
		for _, flags := range []uint64{0o100 | 0o1 | 0o1000, 0o100 | 0o2, 0o20200000 | 0o2} {
			d := p.Decide(Request{Op: op, Open: abi.OpenData{Flags: flags | OpenFlagsIgnore, Mode: 0o644}})
			if !d.Allow || d.Rule < 0 || hasOpenCond(p.Rules[d.Rule]) {
				continue // denied, explicit, or covered by the default-allow warning
			}
			if _, ok := creators[d.Rule]; !ok {
				order = append(order, d.Rule)
			}
			creators[d.Rule] = append(creators[d.Rule], op)
			break
		}
	}
	for _, i := range order {
		l.add(p.Rules[i].Pos, i, "risky-allow", "%s allows %s with O_CREAT or O_TMPFILE under any path: it has no open.* "+
			"condition and a filter cannot see paths; restrict open.flags, or require RESOLVE_BENEATH or RESOLVE_IN_ROOT "+
			"with OPENAT2", l.label(i), opList(creators[i]))
	}
}

func hasCond(r Rule, field string) bool {
	for _, c := range r.Conds {
		if c.Field == field {
			return true
		}
	}
	return false
}

func hasOpenCond(r Rule) bool {
	return hasCond(r, "open.flags") || hasCond(r, "open.mode") || hasCond(r, "open.resolve")
}

// sqeFlags reports sqe_flags tests that the kernel's own flag changes can
// surprise: anything but a bit test, and any test of IOSQE_ASYNC.
func (l *linter) sqeFlags() {
	for i, r := range l.p.Rules {
		for _, c := range r.Conds {
			if c.Field != "sqe_flags" {
				continue
			}
			switch c.Op {
			case HasAll, HasAny, HasNone, Masked:
				bits := c.Values[0]
				if bits&abi.IOSQEAsync != 0 {
					l.add(c.Pos, i, "sqe-flags-equality", "%s tests IOSQE_ASYNC, which the kernel sets by itself "+
						"(a request with IOSQE_IO_DRAIN is seen with IOSQE_ASYNC too)", l.label(i))
				}
			default:
				l.add(c.Pos, i, "sqe-flags-equality", "%s compares sqe_flags with %s: the kernel adds flags of its own "+
					"(IOSQE_ASYNC after IOSQE_IO_DRAIN), so prefer has_all/has_any/has_none on the bits that matter", l.label(i), c.Op)
			}
		}
	}
}

// connect reports the first CONNECT condition: it needs Linux 7.2.
func (l *linter) connect() {
	old := abi.Version{Major: 7, Minor: 1}
	if pos, field := l.p.NeedsWhy(old); field != "" {
		l.add(pos, -1, "needs-7.2", "%s needs Linux 7.2 or later (earlier kernels do not show CONNECT data to filters); "+
			"compiling this policy for 7.0 or 7.1 fails", field)
	}
}

// sendOps are the requests that can reach an address without CONNECT:
// filters see no address for them (UDP sendmsg with msg_name, TCP Fast
// Open with MSG_FASTOPEN).
var sendOps = []abi.Opcode{abi.OpSend, abi.OpSendmsg, abi.OpSendZc, abi.OpSendmsgZc}

// sendAddress warns when CONNECT is restricted by address or port while a
// send opcode may run: the restriction does not hold.
func (l *linter) sendAddress() {
	var at Pos
	rule := -1
	for i, r := range l.p.Rules {
		if !r.Names(abi.OpConnect) {
			continue
		}
		for _, c := range r.Conds {
			if c.Field == "connect.addr" || c.Field == "connect.port" {
				at, rule = c.Pos, i
				break
			}
		}
		if rule >= 0 {
			break
		}
	}
	if rule < 0 {
		return
	}
	var open []abi.Opcode
	for _, op := range sendOps {
		allowed := l.p.Default == Allow
		for _, j := range l.byOp[op] {
			if l.p.Rules[j].Action == Allow {
				allowed = true
			}
		}
		if allowed {
			open = append(open, op)
		}
	}
	if len(open) == 0 {
		return
	}
	if at == (Pos{}) {
		at = l.p.Rules[rule].Pos
	}
	l.add(at, rule, "send-address", "%s restricts CONNECT by address or port, but %s may run, and filters see no address for them: "+
		"a UDP sendmsg to an address, or a TCP Fast Open send (MSG_FASTOPEN), reaches any host and port; deny %s, or do not rely on the CONNECT rule",
		l.label(rule), opList(open), opList(open))
}

// multiBit warns about has_any and has_none tests whose value includes an
// open flag made of several bits, such as O_TMPFILE (__O_TMPFILE and
// O_DIRECTORY) or O_SYNC (__O_SYNC and O_DSYNC): each bit counts alone, so
// "has_none: O_TMPFILE" also denies every O_DIRECTORY open.
func (l *linter) multiBit() {
	type multi struct {
		name string
		bits uint64
	}
	var multis []multi
	for _, c := range abi.Consts() {
		if c.Group == abi.GroupOpen && c.Name != "O_ACCMODE" && bits.OnesCount64(c.Value) > 1 {
			multis = append(multis, multi{c.Name, c.Value})
		}
	}
	for i, r := range l.p.Rules {
		for _, c := range r.Conds {
			if c.Field != "open.flags" || (c.Op != HasAny && c.Op != HasNone) || len(c.Values) != 1 {
				continue
			}
			for _, m := range multis {
				if c.Values[0]&m.bits != m.bits {
					continue
				}
				parts := []string{}
				for b := uint64(1); b != 0 && b <= m.bits; b <<= 1 {
					if m.bits&b != 0 {
						n, ok := abi.ConstName(abi.GroupOpen, b)
						if !ok {
							n = fmt.Sprintf("%#o", b)
						}
						parts = append(parts, n)
					}
				}
				l.add(c.Pos, i, "multi-bit", "%s: %s %s includes %s, which is several bits (%s): each counts alone, so the test also %s requests with only one of them; "+
					"test the bits you mean; for %s itself, match masked: {mask: %s, value: %s} in a rule of its own",
					l.label(i), c.Field, c.Op, m.name, strings.Join(parts, ", "), map[CmpOp]string{HasAny: "matches", HasNone: "refuses"}[c.Op], m.name, m.name, m.name)
				break
			}
		}
	}
}

// ipv4Mapped reports IPv4 prefixes that decide a CONNECT while the same
// hosts stay reachable as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) over
// an AF_INET6 socket.
func (l *linter) ipv4Mapped() {
	for i, r := range l.p.Rules {
		for _, c := range r.Conds {
			// A deny by cidr, or an allow by not_cidr, blocks hosts.
			if !(r.Action == Deny && c.Op == CIDR) && !(r.Action == Allow && c.Op == NotCIDR) {
				continue
			}
			var missing []string
			for _, n := range c.Nets {
				if !n.Addr().Is4() {
					continue
				}
				m := netip.PrefixFrom(netip.AddrFrom16(n.Addr().As16()), n.Bits()+96)
				if !coveredBy(m, [][]netip.Prefix{c.Nets}) {
					missing = append(missing, m.String())
				}
			}
			if len(missing) > 0 {
				l.add(c.Pos, i, "ipv4-mapped", "%s blocks IPv4 prefixes, but an AF_INET6 socket reaches the same hosts "+
					"as IPv4-mapped addresses; add %s", l.label(i), strings.Join(missing, ", "))
			}
		}
	}
}
