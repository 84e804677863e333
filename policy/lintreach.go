package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

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
