package policy

import (
	"fmt"
	"sort"

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
