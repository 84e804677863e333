// Package learn writes least-privilege io_uring policies from what programs
// were seen to do ("ringfence record"). A Recording counts the requests
// (as the filters see them) and register operations of one or more runs;
// Policy turns it into a policy a person can review: default deny, rules
// grouped by purpose, each with a comment of what was seen and how often.
//
// The generalisation rules (docs/record.md):
//   - opcodes without data filters can see are allowed by opcode, grouped
//     by purpose (reads and writes, networking, file system, ...);
//   - SOCKET: the exact (family, type, protocol) triples seen, one rule
//     each (the type without SOCK_NONBLOCK and SOCK_CLOEXEC, which policies
//     ignore);
//   - OPENAT, OPENAT2: "none of the risky bits not seen": the open flags
//     that write, create, truncate, append or make temporary files are
//     refused unless some recorded open used them; with creation seen, the
//     set-id and sticky mode bits likewise;
//   - CONNECT (conditions need Linux 7.2): the destinations seen, as
//     addresses (or, with Options.Network4/Network6, the networks holding
//     them) and ports; other families by family; for an older target kernel
//     one unconditional rule whose comment lists the destinations;
//   - register operations: exactly those seen.
package learn

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// SocketKey is one socket triple as policies compare it.
type SocketKey struct {
	Family, Type, Protocol uint32
}

// ConnectKey is one CONNECT destination as filters see it: the family, and
// for AF_INET and AF_INET6 the address (as a prefix: a single address
// unless widened or merged from a policy) and port.
type ConnectKey struct {
	Family uint32
	Net    netip.Prefix // invalid for families without an address
	Port   uint16
}

// OpenStats summarises one open opcode's requests.
type OpenStats struct {
	Count int
	// Flags and Mode are the union of the normalised open flags and modes
	// seen (O_LARGEFILE, which the kernel adds, left out).
	Flags, Mode uint64
	// Risky counts the requests that used each risky flag.
	Risky map[uint64]int
}

// Recording is what one or more runs did. Its zero value is not ready:
// use New.
type Recording struct {
	// Kernel is the newest kernel the runs were recorded on.
	Kernel abi.Version
	// Ops counts requests per opcode; SQPoll counts those a SQPOLL thread
	// submitted.
	Ops, SQPoll map[abi.Opcode]int
	// Flags is the union of the sqe_flags seen per opcode, for comments
	// (policies do not restrict them: the kernel sets IOSQE_ASYNC itself).
	Flags map[abi.Opcode]uint8
	// Sockets, Opens and Connects hold the data of SOCKET, OPENAT/OPENAT2
	// and CONNECT requests.
	Sockets  map[SocketKey]int
	Opens    map[abi.Opcode]*OpenStats
	Connects map[ConnectKey]int
	// ConnectUnknown is set when some CONNECT destinations are not known
	// (merged from a policy written for a kernel before 7.2): CONNECT
	// then stays unconditional.
	ConnectUnknown bool
	// Register counts io_uring_register calls per operation. RegisterSeen
	// is false when the register calls could not be recorded: the policy
	// then has no register section (every operation allowed).
	Register     map[abi.RegisterOp]int
	RegisterSeen bool
	// Commands are the programs recorded, for the policy's comment.
	Commands []string
}

// New returns an empty Recording.
func New() *Recording {
	return &Recording{
		Ops: map[abi.Opcode]int{}, SQPoll: map[abi.Opcode]int{}, Flags: map[abi.Opcode]uint8{},
		Sockets: map[SocketKey]int{}, Opens: map[abi.Opcode]*OpenStats{},
		Connects: map[ConnectKey]int{}, Register: map[abi.RegisterOp]int{},
		RegisterSeen: true,
	}
}

// riskyOpen are the open flags that change files or create them: write
// access, creation, truncation, appending, temporary files (the bit of
// O_TMPFILE without O_DIRECTORY).
var riskyOpen = []struct {
	name string
	bit  uint64
}{
	{"O_WRONLY", 0o1}, {"O_RDWR", 0o2}, {"O_CREAT", 0o100}, {"O_TRUNC", 0o1000},
	{"O_APPEND", 0o2000}, {"__O_TMPFILE", 0o20000000},
}

// riskyMode are the mode bits refused unless seen (with creation seen).
const riskyMode = 0o7000 // S_ISUID | S_ISGID | S_ISVTX

func riskyOpenMask() uint64 {
	var m uint64
	for _, r := range riskyOpen {
		m |= r.bit
	}
	return m
}

// Add counts one request, as filters see it (kernel.Request.Ctx's
// prediction: see uringtrace.Event.PolicyRequest). sqpoll says a SQPOLL
// thread submitted it.
func (rec *Recording) Add(r policy.Request, sqpoll bool) {
	rec.Ops[r.Op]++
	rec.Flags[r.Op] |= r.SQEFlags
	if sqpoll {
		rec.SQPoll[r.Op]++
	}
	switch r.Op {
	case abi.OpSocket:
		k := SocketKey{r.Socket.Family, uint32(policy.Normalize("socket.type", uint64(r.Socket.Type))), r.Socket.Protocol}
		rec.Sockets[k]++
	case abi.OpOpenat, abi.OpOpenat2:
		o := rec.Opens[r.Op]
		if o == nil {
			o = &OpenStats{Risky: map[uint64]int{}}
			rec.Opens[r.Op] = o
		}
		o.Count++
		flags := policy.Normalize("open.flags", r.Open.Flags)
		o.Flags |= flags
		o.Mode |= r.Open.Mode
		for _, x := range riskyOpen {
			if flags&x.bit != 0 {
				o.Risky[x.bit]++
			}
		}
	case abi.OpConnect:
		k := ConnectKey{Family: r.Connect.Family}
		switch r.Connect.Family {
		case policy.AFInet:
			k.Net = netip.PrefixFrom(netip.AddrFrom4([4]byte(r.Connect.Addr[:4])), 32)
			k.Port = r.Connect.Port
		case policy.AFInet6:
			k.Net = netip.PrefixFrom(netip.AddrFrom16(r.Connect.Addr), 128)
			k.Port = r.Connect.Port
		}
		rec.Connects[k]++
	}
}

// AddRegister counts one io_uring_register call.
func (rec *Recording) AddRegister(op abi.RegisterOp) { rec.Register[op]++ }

// Merge adds everything other saw to rec: the union of two runs.
func (rec *Recording) Merge(other *Recording) {
	if rec.Kernel.Less(other.Kernel) {
		rec.Kernel = other.Kernel
	}
	for k, v := range other.Ops {
		rec.Ops[k] += v
	}
	for k, v := range other.SQPoll {
		rec.SQPoll[k] += v
	}
	for k, v := range other.Flags {
		rec.Flags[k] |= v
	}
	for k, v := range other.Sockets {
		rec.Sockets[k] += v
	}
	for op, o := range other.Opens {
		m := rec.Opens[op]
		if m == nil {
			m = &OpenStats{Risky: map[uint64]int{}}
			rec.Opens[op] = m
		}
		m.Count += o.Count
		m.Flags |= o.Flags
		m.Mode |= o.Mode
		for b, n := range o.Risky {
			m.Risky[b] += n
		}
	}
	for k, v := range other.Connects {
		rec.Connects[k] += v
	}
	for k, v := range other.Register {
		rec.Register[k] += v
	}
	rec.RegisterSeen = rec.RegisterSeen && other.RegisterSeen
	rec.ConnectUnknown = rec.ConnectUnknown || other.ConnectUnknown
	rec.Commands = append(rec.Commands, other.Commands...)
}

// Total returns the number of requests recorded.
func (rec *Recording) Total() int {
	n := 0
	for _, v := range rec.Ops {
		n += v
	}
	return n
}

// Options shape the policy written.
type Options struct {
	// Kernel is the oldest kernel the policy must work on: CONNECT
	// conditions are written only when it is 7.2 or later. Zero means the
	// recording's kernel.
	Kernel abi.Version
	// Network4 and Network6, when not zero, widen CONNECT addresses to
	// the networks of that prefix length holding them (24 and 64, say).
	Network4, Network6 int
	// Name is the policy's name.
	Name string
}

// purposes group the opcodes without data filters can see, in the order
// the policy lists them. An opcode in no group goes to "other operations".
var purposes = []struct {
	name, comment string
	ops           []string
}{
	{"reads and writes", "I/O on descriptors the program already has", []string{
		"READ", "WRITE", "READV", "WRITEV", "READ_FIXED", "WRITE_FIXED", "READV_FIXED", "WRITEV_FIXED",
		"READ_MULTISHOT", "SPLICE", "TEE", "FSYNC", "SYNC_FILE_RANGE", "FALLOCATE", "FTRUNCATE",
		"FADVISE", "MADVISE", "CLOSE", "PIPE"}},
	{"networking on sockets", "accepting, sending and receiving; which sockets exist is up to the SOCKET rules", []string{
		"ACCEPT", "SEND", "RECV", "SENDMSG", "RECVMSG", "SEND_ZC", "SENDMSG_ZC", "SHUTDOWN", "BIND", "LISTEN", "RECV_ZC"}},
	{"file system", "metadata and changes by path (filters cannot see paths)", []string{
		"STATX", "RENAMEAT", "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT", "FSETXATTR", "SETXATTR", "FGETXATTR", "GETXATTR"}},
	{"polling, timers and waiting", "", []string{
		"POLL_ADD", "POLL_REMOVE", "TIMEOUT", "TIMEOUT_REMOVE", "LINK_TIMEOUT", "ASYNC_CANCEL",
		"EPOLL_CTL", "EPOLL_WAIT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_WAITV"}},
	{"ring and buffer management", "", []string{
		"NOP", "NOP128", "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "FILES_UPDATE", "FIXED_FD_INSTALL", "MSG_RING"}},
	{"driver passthrough", "URING_CMD passes commands to drivers and files (NVMe, ublk, socket options): review whether the program needs it", []string{
		"URING_CMD", "URING_CMD128"}},
}

// purposeOf returns the index in purposes of op's group, or len(purposes).
func purposeOf(op abi.Opcode) int {
	for i, p := range purposes {
		for _, n := range p.ops {
			if n == op.String() {
				return i
			}
		}
	}
	return len(purposes)
}

// Policy writes the least-privilege policy allowing exactly what rec saw
// (see the package comment for the rules).
func (rec *Recording) Policy(o Options) *policy.Policy {
	k := o.Kernel
	if k == (abi.Version{}) {
		k = rec.Kernel
	}
	p := &policy.Policy{Version: policy.Version, Default: policy.Deny, Name: o.Name}
	var cmt []string
	if len(rec.Commands) > 0 {
		cmt = append(cmt, "Recorded by ringfence record from: "+strings.Join(rec.Commands, "; "))
	}
	cmt = append(cmt, fmt.Sprintf("%d requests on Linux %v. Everything not seen is denied: review, then test with \"ringfence test\" and \"ringfence verify\".", rec.Total(), rec.Kernel))
	p.Comment = strings.Join(cmt, "\n")

	// Opcodes without filter data, by purpose.
	groups := make([][]abi.Opcode, len(purposes)+1)
	for op := range rec.Ops {
		if hasData(op) {
			continue
		}
		i := purposeOf(op)
		groups[i] = append(groups[i], op)
	}
	for i, ops := range groups {
		if len(ops) == 0 {
			continue
		}
		sort.Slice(ops, func(a, b int) bool { return ops[a] < ops[b] })
		name, comment := "other operations", ""
		if i < len(purposes) {
			name, comment = purposes[i].name, purposes[i].comment
		}
		seen := make([]string, len(ops))
		for j, op := range ops {
			seen[j] = rec.seenOp(op)
		}
		c := "seen: " + strings.Join(seen, ", ")
		if comment != "" {
			c = comment + "; " + c
		}
		p.Rules = append(p.Rules, policy.Rule{Name: name, Ops: ops, Action: policy.Allow, Comment: c})
	}
	p.Rules = append(p.Rules, rec.socketRules()...)
	p.Rules = append(p.Rules, rec.openRules()...)
	p.Rules = append(p.Rules, rec.connectRules(k, o)...)
	if rec.RegisterSeen {
		reg := &policy.Register{Allow: []abi.RegisterOp{}}
		var seen []string
		ops := make([]abi.RegisterOp, 0, len(rec.Register))
		for op := range rec.Register {
			ops = append(ops, op)
		}
		sort.Slice(ops, func(a, b int) bool { return ops[a] < ops[b] })
		for _, op := range ops {
			reg.Allow = append(reg.Allow, op)
			seen = append(seen, fmt.Sprintf("%s %s", op, times(rec.Register[op])))
		}
		if len(seen) == 0 {
			reg.Comment = "no io_uring_register call was seen"
		} else {
			reg.Comment = "seen: " + strings.Join(seen, ", ")
		}
		p.Register = reg
	}
	return p
}

func hasData(op abi.Opcode) bool {
	switch op {
	case abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect:
		return true
	}
	return false
}

// times writes a count for comments: "once", "3 times".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// seenOp writes "READ 120 times (40 by SQPOLL)" for comments.
func (rec *Recording) seenOp(op abi.Opcode) string {
	s := op.String() + " " + times(rec.Ops[op])
	var notes []string
	if n := rec.SQPoll[op]; n > 0 {
		notes = append(notes, fmt.Sprintf("%d by a SQPOLL thread", n))
	}
	if f := rec.Flags[op]; f != 0 {
		notes = append(notes, "with "+format("sqe_flags", uint64(f)))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}

func (rec *Recording) socketRules() []policy.Rule {
	keys := make([]SocketKey, 0, len(rec.Sockets))
	for k := range rec.Sockets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		x, y := keys[a], keys[b]
		if x.Family != y.Family {
			return x.Family < y.Family
		}
		if x.Type != y.Type {
			return x.Type < y.Type
		}
		return x.Protocol < y.Protocol
	})
	var rules []policy.Rule
	for _, k := range keys {
		fam := format("socket.family", uint64(k.Family))
		typ := format("socket.type", uint64(k.Type))
		proto := format("socket.protocol", uint64(k.Protocol))
		rules = append(rules, policy.Rule{
			Name:    fmt.Sprintf("%s %s sockets", fam, typ),
			Ops:     []abi.Opcode{abi.OpSocket},
			Action:  policy.Allow,
			Comment: fmt.Sprintf("SOCKET(%s, %s, %s) seen %s", fam, typ, proto, times(rec.Sockets[k])),
			Conds: []policy.Cond{
				eq("socket.family", uint64(k.Family)),
				eq("socket.type", uint64(k.Type)),
				eq("socket.protocol", uint64(k.Protocol)),
			},
		})
	}
	return rules
}

func (rec *Recording) openRules() []policy.Rule {
	var rules []policy.Rule
	for _, op := range []abi.Opcode{abi.OpOpenat, abi.OpOpenat2} {
		o := rec.Opens[op]
		if o == nil {
			continue
		}
		notSeen := riskyOpenMask() &^ o.Flags
		var used, refused []string
		for _, x := range riskyOpen {
			if n := o.Risky[x.bit]; n > 0 {
				used = append(used, fmt.Sprintf("%s %s", x.name, times(n)))
			} else {
				refused = append(refused, x.name)
			}
		}
		c := fmt.Sprintf("%s seen %s", op, times(o.Count))
		if len(used) > 0 {
			c += "; with " + strings.Join(used, ", ")
		} else {
			c += ", all read-only"
		}
		r := policy.Rule{Name: "opening files (" + op.String() + ")", Ops: []abi.Opcode{op}, Action: policy.Allow}
		if notSeen != 0 {
			r.Conds = append(r.Conds, policy.Cond{Field: "open.flags", Op: policy.HasNone, Values: []uint64{notSeen}})
			c += "; refused because never seen: " + strings.Join(refused, ", ")
		}
		if o.Flags&(0o100|0o20000000) != 0 {
			if m := riskyMode &^ o.Mode; m != 0 {
				r.Conds = append(r.Conds, policy.Cond{Field: "open.mode", Op: policy.HasNone, Values: []uint64{m}})
				c += "; set-id and sticky mode bits never seen"
			}
		}
		r.Comment = c
		// Identical rules for OPENAT and OPENAT2 become one.
		if n := len(rules); n > 0 && sameConds(rules[n-1].Conds, r.Conds) {
			rules[n-1].Ops = append(rules[n-1].Ops, op)
			rules[n-1].Name = "opening files"
			rules[n-1].Comment += "\n" + c
			continue
		}
		rules = append(rules, r)
	}
	return rules
}

func sameConds(a, b []policy.Cond) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Field != b[i].Field || a[i].Op != b[i].Op || !slices.Equal(a[i].Values, b[i].Values) {
			return false
		}
	}
	return true
}

func (rec *Recording) connectRules(k abi.Version, o Options) []policy.Rule {
	if rec.Ops[abi.OpConnect] == 0 {
		return nil
	}
	// Widen addresses, and collect what was seen per network.
	ports := map[netip.Prefix]map[uint16]int{}
	families := map[uint32]int{}
	var seen []string
	keys := make([]ConnectKey, 0, len(rec.Connects))
	for ck := range rec.Connects {
		keys = append(keys, ck)
	}
	sort.Slice(keys, func(a, b int) bool { return keyLess(keys[a], keys[b]) })
	for _, ck := range keys {
		n := rec.Connects[ck]
		if !ck.Net.IsValid() {
			families[ck.Family] += n
			seen = append(seen, fmt.Sprintf("%s %s", format("connect.family", uint64(ck.Family)), times(n)))
			continue
		}
		net := ck.Net
		if bits := o.Network4; net.Addr().Is4() && bits > 0 && bits < net.Bits() {
			net, _ = net.Addr().Prefix(bits)
		}
		if bits := o.Network6; net.Addr().Is6() && bits > 0 && bits < net.Bits() {
			net, _ = net.Addr().Prefix(bits)
		}
		if ports[net] == nil {
			ports[net] = map[uint16]int{}
		}
		ports[net][ck.Port] += n
		seen = append(seen, fmt.Sprintf("%s port %d %s", hostOrNet(ck.Net), ck.Port, times(n)))
	}
	if k.Less(abi.Version{Major: 7, Minor: 2}) || rec.ConnectUnknown {
		why := "Filters see CONNECT's destination only on Linux 7.2 and later; write the policy for 7.2 (--kernel 7.2) to restrict it."
		if rec.ConnectUnknown {
			why = "Merged with a policy whose CONNECT rule had no conditions: its destinations are unknown, so CONNECT stays unrestricted."
		}
		dest := ""
		if len(seen) > 0 {
			dest = ": " + strings.Join(seen, ", ")
		}
		return []policy.Rule{{
			Name: "connecting", Ops: []abi.Opcode{abi.OpConnect}, Action: policy.Allow,
			Comment: fmt.Sprintf("CONNECT seen %s%s. %s", times(rec.Ops[abi.OpConnect]), dest, why),
		}}
	}
	// Networks with the same port set share a rule.
	bySet := map[string][]netip.Prefix{}
	setPorts := map[string][]uint64{}
	counts := map[string]int{}
	for net, ps := range ports {
		var list []uint64
		for p, n := range ps {
			list = append(list, uint64(p))
			counts[fmt.Sprint(net)] += n
		}
		sort.Slice(list, func(a, b int) bool { return list[a] < list[b] })
		key := fmt.Sprint(list)
		bySet[key] = append(bySet[key], net)
		setPorts[key] = list
	}
	setKeys := make([]string, 0, len(bySet))
	for s := range bySet {
		nets := bySet[s]
		sort.Slice(nets, func(a, b int) bool { return prefixLess(nets[a], nets[b]) })
		setKeys = append(setKeys, s)
	}
	sort.Slice(setKeys, func(a, b int) bool { return prefixLess(bySet[setKeys[a]][0], bySet[setKeys[b]][0]) })
	var rules []policy.Rule
	for _, s := range setKeys {
		nets := bySet[s]
		var names []string
		n := 0
		for _, net := range nets {
			names = append(names, hostOrNet(net))
			n += counts[fmt.Sprint(net)]
		}
		portList := setPorts[s]
		ps := make([]string, len(portList))
		for i, p := range portList {
			ps[i] = fmt.Sprint(p)
		}
		portCond := policy.Cond{Field: "connect.port", Op: policy.In, Values: portList}
		if len(portList) == 1 {
			portCond = eq("connect.port", portList[0])
		}
		rules = append(rules, policy.Rule{
			Name:    "connecting to " + strings.Join(names, ", "),
			Ops:     []abi.Opcode{abi.OpConnect},
			Action:  policy.Allow,
			Comment: fmt.Sprintf("seen %s, %s %s", times(n), map[bool]string{true: "port", false: "ports"}[len(ps) == 1], strings.Join(ps, ", ")),
			Conds: []policy.Cond{
				{Field: "connect.addr", Op: policy.CIDR, Nets: nets},
				portCond,
			},
		})
	}
	if len(families) > 0 {
		var fams []uint64
		var names []string
		for f := range families {
			fams = append(fams, uint64(f))
		}
		sort.Slice(fams, func(a, b int) bool { return fams[a] < fams[b] })
		total := 0
		for _, f := range fams {
			names = append(names, format("connect.family", f))
			total += families[uint32(f)]
		}
		c := policy.Cond{Field: "connect.family", Op: policy.In, Values: fams}
		if len(fams) == 1 {
			c = eq("connect.family", fams[0])
		}
		rules = append(rules, policy.Rule{
			Name: "connecting by " + strings.Join(names, ", "), Ops: []abi.Opcode{abi.OpConnect}, Action: policy.Allow,
			Comment: fmt.Sprintf("seen %s (families without an address filters can see)", times(total)),
			Conds:   []policy.Cond{c},
		})
	}
	return rules
}

func keyLess(a, b ConnectKey) bool {
	if a.Family != b.Family {
		return a.Family < b.Family
	}
	if a.Net != b.Net {
		return prefixLess(a.Net, b.Net)
	}
	return a.Port < b.Port
}

func prefixLess(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

// hostOrNet writes a single-address prefix as the address.
func hostOrNet(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func eq(field string, v uint64) policy.Cond {
	return policy.Cond{Field: field, Op: policy.Eq, Values: []uint64{v}}
}

func format(field string, v uint64) string {
	f, _ := policy.LookupField(field)
	return policy.FormatValue(f, v)
}
