package policy

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

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
						"(on every %s request, on OPENAT and OPENAT2 with O_CREAT, O_TRUNC or O_TMPFILE, and with IOSQE_IO_DRAIN)",
						l.label(i), orNames(abi.AlwaysAsync()))
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

// orNames joins the names of ops with commas and a final "or".
func orNames(ops []abi.Opcode) string {
	var b strings.Builder
	for i, op := range ops {
		switch {
		case i == len(ops)-1 && i > 0:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(op.String())
	}
	return b.String()
}
