package policy

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// TestHoldsBoundaries checks every numeric operator just below, at and just
// above its boundaries.
func TestHoldsBoundaries(t *testing.T) {
	const max64 = ^uint64(0)
	tests := []struct {
		name string
		c    Cond
		yes  []uint64
		no   []uint64
	}{
		{"eq", Cond{Op: Eq, Values: []uint64{5}}, []uint64{5}, []uint64{4, 6, 0, max64}},
		{"eq 0", Cond{Op: Eq, Values: []uint64{0}}, []uint64{0}, []uint64{1, max64}},
		{"ne", Cond{Op: Ne, Values: []uint64{5}}, []uint64{4, 6, 0, max64}, []uint64{5}},
		{"in", Cond{Op: In, Values: []uint64{1, 3, max64}}, []uint64{1, 3, max64}, []uint64{0, 2, 4, max64 - 1}},
		{"not_in", Cond{Op: NotIn, Values: []uint64{1, 3}}, []uint64{0, 2, 4}, []uint64{1, 3}},
		{"lt", Cond{Op: Lt, Values: []uint64{10}}, []uint64{0, 9}, []uint64{10, 11, max64}},
		{"lt 0", Cond{Op: Lt, Values: []uint64{0}}, nil, []uint64{0, 1}},
		{"le", Cond{Op: Le, Values: []uint64{10}}, []uint64{0, 9, 10}, []uint64{11, max64}},
		{"gt", Cond{Op: Gt, Values: []uint64{10}}, []uint64{11, max64}, []uint64{0, 9, 10}},
		{"ge", Cond{Op: Ge, Values: []uint64{10}}, []uint64{10, 11, max64}, []uint64{0, 9}},
		{"gt is unsigned", Cond{Op: Gt, Values: []uint64{1 << 63}}, []uint64{1<<63 + 1, max64}, []uint64{1 << 63, 1}},
		{"range", Cond{Op: Range, Values: []uint64{1024, 65535}}, []uint64{1024, 1025, 65534, 65535}, []uint64{0, 1023, 65536}},
		{"range one value", Cond{Op: Range, Values: []uint64{7, 7}}, []uint64{7}, []uint64{6, 8}},
		{"range lo>hi is empty", Cond{Op: Range, Values: []uint64{8, 7}}, nil, []uint64{6, 7, 8, 9}},
		{"not_range", Cond{Op: NotRange, Values: []uint64{1024, 65535}}, []uint64{0, 1023, 65536}, []uint64{1024, 65535, 2000}},
		{"masked", Cond{Op: Masked, Values: []uint64{0o3, 0o1}}, []uint64{0o1, 0o101, 0o1001}, []uint64{0, 0o2, 0o3}},
		{"masked zero", Cond{Op: Masked, Values: []uint64{0o3, 0}}, []uint64{0, 0o100}, []uint64{1, 2, 3}},
		{"masked value outside mask", Cond{Op: Masked, Values: []uint64{1, 2}}, nil, []uint64{0, 1, 2, 3}},
		{"has_all", Cond{Op: HasAll, Values: []uint64{0o1100}}, []uint64{0o1100, 0o1101, 0o7777}, []uint64{0o100, 0o1000, 0}},
		{"has_all 0 always", Cond{Op: HasAll, Values: []uint64{0}}, []uint64{0, 1, max64}, nil},
		{"has_any", Cond{Op: HasAny, Values: []uint64{0o1100}}, []uint64{0o100, 0o1000, 0o1100}, []uint64{0, 0o1, 0o2000}},
		{"has_any 0 never", Cond{Op: HasAny, Values: []uint64{0}}, nil, []uint64{0, 1, max64}},
		{"has_none", Cond{Op: HasNone, Values: []uint64{0o1100}}, []uint64{0, 0o1, 0o2000}, []uint64{0o100, 0o1000}},
		{"high bit of 64", Cond{Op: HasAny, Values: []uint64{1 << 63}}, []uint64{1 << 63}, []uint64{1 << 31, 1 << 32}},
		{"cidr is not numeric", Cond{Op: CIDR, Nets: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, nil, []uint64{0, 1}},
	}
	for _, tt := range tests {
		for _, v := range tt.yes {
			if !tt.c.Holds(v) {
				t.Errorf("%s: Holds(%#x) = false, want true", tt.name, v)
			}
		}
		for _, v := range tt.no {
			if tt.c.Holds(v) {
				t.Errorf("%s: Holds(%#x) = true, want false", tt.name, v)
			}
		}
	}
}

func addr(s string) [16]byte {
	a := netip.MustParseAddr(s)
	var b [16]byte
	if a.Is4() {
		copy(b[:], a.AsSlice())
		return b
	}
	return a.As16()
}

func TestHoldsAddr(t *testing.T) {
	nets := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	cidr := Cond{Field: "connect.addr", Op: CIDR, Nets: nets}
	not := Cond{Field: "connect.addr", Op: NotCIDR, Nets: nets}
	tests := []struct {
		family uint32
		addr   string
		in     bool
	}{
		{AFInet, "10.0.0.0", true},
		{AFInet, "10.255.255.255", true},
		{AFInet, "11.0.0.0", false},
		{AFInet, "9.255.255.255", false},
		{AFInet, "192.168.1.7", true},
		{AFInet, "192.168.1.6", false},
		{AFInet, "192.168.1.8", false},
		{AFInet6, "fd00::1", true},
		{AFInet6, "fdff:ffff::1", true},
		{AFInet6, "fe00::", false},
		{AFInet6, "fc00::", false},
		// An IPv4 prefix never matches an AF_INET6 request, mapped or not.
		{AFInet6, "::ffff:10.1.2.3", false},
		// The family decides how the address bytes are read: bytes of
		// fd00:: read as IPv4 are 253.0.0.0, outside every v4 prefix.
		{AFInet, "fd00::", false},
		// Other families: cidr never holds, not_cidr always does.
		{1, "10.0.0.1", false},
		{0, "10.0.0.1", false},
	}
	for _, tt := range tests {
		a := addr(tt.addr)
		if got := cidr.HoldsAddr(tt.family, a); got != tt.in {
			t.Errorf("cidr family %d %s = %v, want %v", tt.family, tt.addr, got, tt.in)
		}
		if got := not.HoldsAddr(tt.family, a); got == tt.in {
			t.Errorf("not_cidr family %d %s = %v, want %v", tt.family, tt.addr, got, !tt.in)
		}
	}
	// A v4 /0 holds for every AF_INET address and no AF_INET6 one.
	all4 := Cond{Op: CIDR, Nets: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	if !all4.HoldsAddr(AFInet, addr("255.255.255.255")) || all4.HoldsAddr(AFInet6, addr("::")) {
		t.Error("0.0.0.0/0 must hold for every IPv4 address and no IPv6 one")
	}
}

func TestNormalisation(t *testing.T) {
	tests := []struct {
		field string
		in    uint64
		want  uint64
	}{
		{"socket.type", 1 | 0o4000, 1},
		{"socket.type", 2 | 0o2000000, 2},
		{"socket.type", 5 | 0o4000 | 0o2000000, 5},
		{"socket.type", 0o10, 0o10},
		{"open.flags", 0o100000, 0},
		{"open.flags", 0o100000 | 0o100 | 0o1, 0o101},
		{"open.flags", 0o4000, 0o4000}, // O_NONBLOCK is not ignored
		{"socket.family", 0o4000, 0o4000},
		{"open.mode", 0o100000, 0o100000},
		{"user_data", ^uint64(0), ^uint64(0)},
	}
	for _, tt := range tests {
		if got := Normalize(tt.field, tt.in); got != tt.want {
			t.Errorf("Normalize(%s, %#o) = %#o, want %#o", tt.field, tt.in, got, tt.want)
		}
	}
	// FieldValue applies it.
	r := Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 2, Type: 1 | 0o4000}}
	if v, ok := FieldValue(r, "socket.type"); !ok || v != 1 {
		t.Errorf("FieldValue socket.type = %d, %v; want 1, true", v, ok)
	}
	if _, ok := FieldValue(r, "open.flags"); ok {
		t.Error("FieldValue open.flags on SOCKET must not be ok")
	}
	if _, ok := FieldValue(r, "connect.addr"); ok {
		t.Error("FieldValue connect.addr must not be ok (not numeric)")
	}
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

const decidePolicy = `
version: 1
default: deny
rules:
  - name: io
    ops: [READ, WRITE]
    action: allow
  - name: no raw
    ops: [SOCKET]
    action: deny
    when:
      socket.type: SOCK_RAW
  - name: inet
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
  - name: no create
    ops: [OPENAT, OPENAT2]
    action: deny
    when:
      open.flags: {has_any: O_CREAT|O_TRUNC}
  - name: beneath
    ops: [OPENAT2]
    action: allow
    when:
      open.resolve: {has_all: RESOLVE_BENEATH}
  - name: read-only
    ops: [OPENAT]
    action: allow
    when:
      open.flags: {masked: {mask: O_ACCMODE, value: O_RDONLY}}
  - name: local
    ops: [CONNECT]
    action: allow
    when:
      connect.addr: [127.0.0.0/8, "::1"]
      connect.port: {range: [1024, 65535]}
  - name: tagged
    ops: [NOP]
    action: allow
    when:
      user_data: {ge: 0x100000000}
      sqe_flags: {has_none: IOSQE_IO_LINK}
`

func TestDecide(t *testing.T) {
	p := mustParse(t, decidePolicy)
	sock := func(f, ty uint32) Request {
		return Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: f, Type: ty}}
	}
	open := func(op abi.Opcode, flags, resolve uint64) Request {
		return Request{Op: op, Open: abi.OpenData{Flags: flags | OpenFlagsIgnore, Resolve: resolve}}
	}
	conn := func(a string, port uint16) Request {
		r := Request{Op: abi.OpConnect}
		_ = r.setAddr(netip.MustParseAddr(a), false)
		r.Connect.Port = port
		return r
	}
	tests := []struct {
		name  string
		r     Request
		allow bool
		rule  int
	}{
		{"read", Request{Op: abi.OpRead}, true, 0},
		{"write", Request{Op: abi.OpWrite}, true, 0},
		{"unnamed opcode takes the default", Request{Op: abi.OpFsync}, false, -1},
		{"opcode past the table takes the default", Request{Op: 200}, false, -1},
		{"tcp", sock(AFInet, 1), true, 2},
		{"tcp nonblock cloexec normalised", sock(AFInet6, 1|0o4000|0o2000000), true, 2},
		{"raw denied first", sock(AFInet, 3), false, 1},
		{"raw with flags still raw", sock(AFInet, 3|0o4000), false, 1},
		{"unix falls to default", sock(1, 1), false, -1},
		{"openat read-only", open(abi.OpOpenat, 0, 0), true, 5},
		{"openat O_LARGEFILE ignored in masked", open(abi.OpOpenat, 0o100000, 0), true, 5},
		{"openat write", open(abi.OpOpenat, 0o1, 0), false, -1},
		{"openat create", open(abi.OpOpenat, 0o100, 0), false, 3},
		{"openat2 create beneath still denied (first match)", open(abi.OpOpenat2, 0o101, 0x08), false, 3},
		{"openat2 beneath", open(abi.OpOpenat2, 0o2, 0x08|0x10), true, 4},
		{"openat2 read-only is not the OPENAT rule", open(abi.OpOpenat2, 0, 0), false, -1},
		{"connect local v4", conn("127.0.0.1", 8080), true, 6},
		{"connect local v6", conn("::1", 1024), true, 6},
		{"connect low port", conn("127.0.0.1", 1023), false, -1},
		{"connect remote", conn("10.0.0.1", 8080), false, -1},
		{"connect mapped v4 is v6", conn("::ffff:127.0.0.1", 8080), false, -1},
		{"nop tagged", Request{Op: abi.OpNop, UserData: 1 << 32}, true, 7},
		{"nop below tag", Request{Op: abi.OpNop, UserData: 1<<32 - 1}, false, -1},
		{"nop linked", Request{Op: abi.OpNop, UserData: 1 << 40, SQEFlags: abi.IOSQEIOLink}, false, -1},
		{"nop with other flags", Request{Op: abi.OpNop, UserData: 1 << 40, SQEFlags: abi.IOSQEAsync}, true, 7},
	}
	for _, tt := range tests {
		d := p.Decide(tt.r)
		if d.Allow != tt.allow || d.Rule != tt.rule {
			t.Errorf("%s: Decide(%s) = %+v, want allow=%v rule=%d", tt.name, tt.r, d, tt.allow, tt.rule)
		}
	}
}

func TestDecideDefaultAllow(t *testing.T) {
	p := mustParse(t, "version: 1\ndefault: allow\nrules:\n  - ops: [URING_CMD]\n    action: deny\n")
	if d := p.Decide(Request{Op: abi.OpUringCmd}); d.Allow || d.Rule != 0 {
		t.Errorf("URING_CMD: %+v, want denied by rule 0", d)
	}
	if d := p.Decide(Request{Op: abi.OpRead}); !d.Allow || d.Rule != -1 {
		t.Errorf("READ: %+v, want allowed by default", d)
	}
}

// A condition on a field the opcode lacks (only possible in code) never
// holds: Decide must not read another view's bytes.
func TestDecideFieldNotInOpcode(t *testing.T) {
	p := &Policy{Version: 1, Default: Allow, Rules: []Rule{{
		Ops: []abi.Opcode{abi.OpOpenat}, Action: Deny,
		Conds: []Cond{{Field: "socket.family", Op: Eq, Values: []uint64{0}}},
	}}}
	if d := p.Decide(Request{Op: abi.OpOpenat}); !d.Allow {
		t.Errorf("got %+v, want the default (the condition cannot hold)", d)
	}
	if err := p.Validate(); err == nil {
		t.Error("Validate accepted socket.family on OPENAT")
	}
}

func TestCtx(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		r := Request{Op: abi.OpSocket, UserData: 0x1122334455667788, SQEFlags: 0x11,
			Socket: abi.SocketData{Family: 2, Type: 0o4001, Protocol: 6}}
		c := r.Ctx(bo)
		if c.Opcode != 45 || c.PDUSize != abi.PDUSizeSocket || c.UserData != r.UserData || c.SQEFlags != 0x11 {
			t.Errorf("%v: SOCKET ctx header %+v", bo, c)
		}
		if got := c.Socket(bo); got != r.Socket {
			t.Errorf("%v: socket data %+v, want %+v (raw, not normalised)", bo, got, r.Socket)
		}
		o := Request{Op: abi.OpOpenat2, Open: abi.OpenData{Flags: 0o100101, Mode: 0o644, Resolve: 8}}
		oc := o.Ctx(bo)
		if oc.PDUSize != abi.PDUSizeOpen || oc.Open(bo) != o.Open {
			t.Errorf("%v: open ctx %+v", bo, oc)
		}
		cr := Request{Op: abi.OpConnect}
		_ = cr.setAddr(netip.MustParseAddr("10.1.2.3"), false)
		cr.Connect.Port = 443
		cr.Connect.Addr[7] = 0xff // junk past an IPv4 address is not shown
		cc := cr.Ctx(bo)
		enc := cc.Encode(bo)
		if cc.PDUSize != abi.PDUSizeConnect || enc[20] != 0x01 || enc[21] != 0xbb ||
			enc[24] != 10 || enc[27] != 3 || enc[31] != 0 {
			t.Errorf("%v: connect ctx bytes % x", bo, enc[16:])
		}
		if old := cr.CtxFor(bo, abi.Version{Major: 7, Minor: 0}); old.PDUSize != 0 || old.PDU != [24]byte{} {
			t.Errorf("%v: CONNECT on 7.0 must show no data, got %+v", bo, old)
		}
		if n := (Request{Op: abi.OpRead, UserData: 9}).Ctx(bo); n.PDUSize != 0 || n.PDU != [24]byte{} || n.Opcode != 22 {
			t.Errorf("%v: READ ctx %+v", bo, n)
		}
	}
}

func TestNeeds(t *testing.T) {
	p := mustParse(t, decidePolicy)
	if got := p.Needs(); got != (abi.Version{Major: 7, Minor: 2}) {
		t.Errorf("Needs = %v, want 7.2", got)
	}
	pos, field := p.NeedsWhy(abi.Version{Major: 7, Minor: 0})
	if field != "connect.addr" || pos.Line != 37 {
		t.Errorf("NeedsWhy(7.0) = %v %q, want line 37 connect.addr", pos, field)
	}
	if _, f := p.NeedsWhy(abi.Version{Major: 7, Minor: 2}); f != "" {
		t.Errorf("NeedsWhy(7.2) = %q, want none", f)
	}
	q := mustParse(t, "version: 1\ndefault: deny\nrules:\n  - ops: [CONNECT]\n    action: allow\n")
	if got := q.Needs(); got != abi.FilterSince() {
		t.Errorf("CONNECT without conditions needs %v, want 7.0", got)
	}
}

func TestOps(t *testing.T) {
	p := mustParse(t, decidePolicy)
	want := []abi.Opcode{abi.OpNop, abi.OpConnect, abi.OpOpenat, abi.OpRead, abi.OpWrite, abi.OpOpenat2, abi.OpSocket}
	got := p.Ops()
	if len(got) != len(want) {
		t.Fatalf("Ops = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Ops = %v, want %v", got, want)
		}
	}
}

// TestOpViewMatchesABI keeps opView in step with abi.Opcodes().
func TestOpViewMatchesABI(t *testing.T) {
	for _, info := range abi.Opcodes() {
		if got := opView(info.Op); got != info.View {
			t.Errorf("opView(%s) = %v, abi says %v", info.Op, got, info.View)
		}
	}
	if opView(abi.Opcode(abi.OpLast)) != abi.ViewCommon {
		t.Error("opcodes past the table have no data view")
	}
}

func BenchmarkDecide(b *testing.B) {
	p := mustParse(b, decidePolicy)
	r := Request{Op: abi.OpConnect, Connect: abi.ConnectData{Family: AFInet, Port: 8080, Addr: [16]byte{127, 0, 0, 1}}}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(r)
	}
}
