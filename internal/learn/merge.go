package learn

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// FromPolicy reads back a policy that Policy wrote (possibly edited, as
// long as its rules keep the shapes Policy writes), as the Recording it
// allows: "ringfence record --merge" adds a new run to it. Counts come from
// the rules' comments where they say them ("READ 12 times"), else 1.
//
// It refuses, naming the rule, a policy with another default than deny, a
// deny rule, or a condition Policy never writes: merging such a policy
// would silently widen or narrow what it allows.
func FromPolicy(p *policy.Policy) (*Recording, error) {
	rec := New()
	rec.Kernel = p.Needs()
	if p.Default != policy.Deny {
		return nil, fmt.Errorf("%s: --merge reads policies written by ringfence record, which deny by default; this one has default: allow", where(p, p.DefaultPos))
	}
	for i, r := range p.Rules {
		if err := rec.addRule(r); err != nil {
			return nil, fmt.Errorf("%s: %s: %v (--merge reads the rules ringfence record writes)", where(p, r.Pos), r.Label(i), err)
		}
	}
	if p.Register == nil {
		rec.RegisterSeen = false
	} else {
		counts := commentCounts(p.Register.Comment)
		for _, op := range p.Register.Allow {
			rec.Register[op] += count(counts, op.String())
		}
	}
	return rec, nil
}

func where(p *policy.Policy, pos policy.Pos) string {
	if pos.File == "" {
		pos.File = p.File
	}
	return pos.String()
}

// countRE finds "NAME 12 times" and "NAME once" in comments.
var countRE = regexp.MustCompile(`([A-Z][A-Z0-9_]*) (?:(\d+) times|once)`)

func commentCounts(c string) map[string]int {
	out := map[string]int{}
	for _, m := range countRE.FindAllStringSubmatch(c, -1) {
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		out[m[1]] = n
	}
	return out
}

func count(counts map[string]int, name string) int {
	if n, ok := counts[name]; ok && n > 0 {
		return n
	}
	return 1
}

var seenRE = regexp.MustCompile(`seen (?:(\d+) times|once)`)

// ruleCount reads the first "seen N times" of a rule's comment.
func ruleCount(c string) int {
	m := seenRE.FindStringSubmatch(c)
	if m == nil {
		return 1
	}
	if m[1] == "" {
		return 1
	}
	n, _ := strconv.Atoi(m[1])
	return max(n, 1)
}

func (rec *Recording) addRule(r policy.Rule) error {
	if r.Action != policy.Allow {
		return fmt.Errorf("a deny rule")
	}
	if len(r.Conds) == 0 {
		counts := commentCounts(r.Comment)
		for _, op := range r.Ops {
			if op == abi.OpSocket || op == abi.OpOpenat || op == abi.OpOpenat2 {
				return fmt.Errorf("%s without conditions would allow every %s", op, op)
			}
		}
		for _, op := range r.Ops {
			if op == abi.OpConnect {
				// Unconditional CONNECT (written for a kernel
				// before 7.2): the destinations are not known.
				rec.ConnectUnknown = true
				rec.Ops[op] += ruleCount(r.Comment)
				continue
			}
			rec.Ops[op] += count(counts, op.String())
		}
		return nil
	}
	if len(r.Ops) == 0 {
		return fmt.Errorf("no opcodes")
	}
	switch r.Ops[0] {
	case abi.OpSocket:
		if len(r.Ops) != 1 || len(r.Conds) != 3 {
			return fmt.Errorf("a SOCKET rule must test socket.family, socket.type and socket.protocol for equality")
		}
		var k SocketKey
		for _, c := range r.Conds {
			if c.Op != policy.Eq {
				return fmt.Errorf("%s: only eq is read back", c.Field)
			}
			switch c.Field {
			case "socket.family":
				k.Family = uint32(c.Values[0])
			case "socket.type":
				k.Type = uint32(c.Values[0])
			case "socket.protocol":
				k.Protocol = uint32(c.Values[0])
			}
		}
		n := ruleCount(r.Comment)
		rec.Sockets[k] += n
		rec.Ops[abi.OpSocket] += n
	case abi.OpOpenat, abi.OpOpenat2:
		flags, mode := riskyOpenMask(), uint64(0)
		creating := false
		for _, c := range r.Conds {
			if c.Op != policy.HasNone {
				return fmt.Errorf("%s: only has_none is read back", c.Field)
			}
			switch c.Field {
			case "open.flags":
				flags = riskyOpenMask() &^ c.Values[0]
			case "open.mode":
				mode = riskyMode &^ c.Values[0]
				creating = true
			default:
				return fmt.Errorf("a condition on %s", c.Field)
			}
		}
		if creating && flags&(0o100|0o20000000) == 0 {
			return fmt.Errorf("an open.mode condition without creation allowed")
		}
		for _, op := range r.Ops {
			if op != abi.OpOpenat && op != abi.OpOpenat2 {
				return fmt.Errorf("%s in an open rule", op)
			}
			o := rec.Opens[op]
			if o == nil {
				o = &OpenStats{Risky: map[uint64]int{}}
				rec.Opens[op] = o
			}
			n := ruleCount(r.Comment)
			o.Count += n
			o.Flags |= flags
			if creating {
				// Creation seen: the mode bits allowed are what
				// was seen (at least the ordinary permission bits).
				o.Mode |= mode | 0o777
			}
			for _, x := range riskyOpen {
				if flags&x.bit != 0 {
					o.Risky[x.bit]++
				}
			}
			rec.Ops[op] += n
		}
	case abi.OpConnect:
		if len(r.Ops) != 1 {
			return fmt.Errorf("CONNECT shares the rule with other opcodes")
		}
		n := ruleCount(r.Comment)
		rec.Ops[abi.OpConnect] += n
		var nets []netip.Prefix
		var ports, fams []uint64
		for _, c := range r.Conds {
			switch {
			case c.Field == "connect.addr" && c.Op == policy.CIDR:
				nets = c.Nets
			case c.Field == "connect.port" && (c.Op == policy.Eq || c.Op == policy.In):
				ports = c.Values
			case c.Field == "connect.family" && (c.Op == policy.Eq || c.Op == policy.In):
				fams = c.Values
			default:
				return fmt.Errorf("a %s %s condition", c.Field, c.Op)
			}
		}
		switch {
		case len(fams) > 0 && nets == nil && ports == nil:
			for _, f := range fams {
				rec.Connects[ConnectKey{Family: uint32(f)}] += 1
			}
		case len(nets) > 0 && len(ports) > 0 && fams == nil:
			for _, net := range nets {
				fam := uint32(policy.AFInet6)
				if net.Addr().Is4() {
					fam = policy.AFInet
				}
				for _, p := range ports {
					rec.Connects[ConnectKey{Family: fam, Net: net, Port: uint16(p)}] += 1
				}
			}
		default:
			return fmt.Errorf("a CONNECT rule must name addresses and ports, or families")
		}
	default:
		return fmt.Errorf("conditions on %s", r.Ops[0])
	}
	return nil
}
