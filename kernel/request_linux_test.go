package kernel

import (
	"encoding/binary"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// Host tests of the context prediction; the kernel tests (package
// kerneltest) check the same predictions against real kernels.

func TestRequestCtx(t *testing.T) {
	ne := binary.NativeEndian
	v70, v72, v73 := abi.Version{Major: 7, Minor: 0}, abi.Version{Major: 7, Minor: 2}, abi.Version{Major: 7, Minor: 3}
	type want struct {
		flags   uint8
		pdu     uint8
		words   map[int]uint32 // context words that must hold these values
		prepNot bool
	}
	inet4 := SockaddrInet4(0x1f90, [4]byte{192, 0, 2, 1})
	inet6 := SockaddrInet6(443, [16]byte{0x20, 0x01, 15: 7})
	cases := []struct {
		name string
		req  Request
		k    abi.Version
		want want
	}{
		{"nop", Request{Op: abi.OpNop, UserData: 0x1122334455667788}, v73,
			want{words: map[int]uint32{0: 0x55667788, 1: 0x11223344, 2: 0}}},
		{"nop drain adds async", Request{Op: abi.OpNop, Flags: abi.IOSQEIODrain}, v73,
			want{flags: 0x12}},
		{"drain with skip-success refused", Request{Op: abi.OpNop, Flags: abi.IOSQEIODrain | abi.IOSQECQESkipSuccess}, v73,
			want{prepNot: true}},
		{"nop flag 0x80 dropped", Request{Op: abi.OpNop, Flags: 0x80 | abi.IOSQEIOLink}, v73,
			want{flags: abi.IOSQEIOLink}},
		{"socket keeps nonblock before 7.3", Request{Op: abi.OpSocket, Socket: SocketArgs{2, 0x801, 6}}, v72,
			want{pdu: 12, words: map[int]uint32{4: 2, 5: 0x801, 6: 6}}},
		{"socket strips nonblock from 7.3", Request{Op: abi.OpSocket, Socket: SocketArgs{2, 0x80801, 6}}, v73,
			want{pdu: 12, words: map[int]uint32{4: 2, 5: 1, 6: 6}}},
		{"socket bad type bits", Request{Op: abi.OpSocket, Socket: SocketArgs{2, 0x100, 0}}, v73,
			want{prepNot: true}},
		{"openat rdonly gets largefile", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 0, Mode: 0o644}}, v70,
			want{pdu: 24, words: map[int]uint32{4: 0x8000, 5: 0, 6: 0, 7: 0, 8: 0, 9: 0}}},
		{"openat creat keeps mode, async", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 0o102, Mode: 0o100644}}, v70,
			want{flags: abi.IOSQEAsync, pdu: 24, words: map[int]uint32{4: 0o102 | 0x8000, 6: 0o644}}},
		{"openat path keeps only its flags", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 0o10000000 | 0o400000 | 0o2 | 0o100, Mode: 0o644}}, v73,
			want{pdu: 24, words: map[int]uint32{4: 0o10000000 | 0o400000, 6: 0}}},
		{"openat invalid high bit dropped", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 0x80000000}}, v73,
			want{pdu: 24, words: map[int]uint32{4: 0x8000}}},
		{"openat bit 26 dropped before 7.2", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 1 << 26}}, v70,
			want{pdu: 24, words: map[int]uint32{4: 0x8000}}},
		{"openat bit 26 kept from 7.2, with O_PATH", Request{Op: abi.OpOpenat, Open: OpenArgs{Flags: 1<<26 | 0o10000000 | 1<<25}}, v72,
			want{pdu: 24, words: map[int]uint32{4: 1<<26 | 0o10000000}}},
		{"openat fixed file refused", Request{Op: abi.OpOpenat, Flags: abi.IOSQEFixedFile}, v73,
			want{prepNot: true}},
		{"openat2 raw values", Request{Op: abi.OpOpenat2, Open: OpenArgs{Flags: 1 << 40, Mode: 1 << 33, Resolve: 0x10}}, v70,
			want{pdu: 24, words: map[int]uint32{4: 0x8000, 5: 1 << 8, 6: 0, 7: 2, 8: 0x10}}},
		{"openat2 small how", Request{Op: abi.OpOpenat2, Open: OpenArgs{HowSize: 16}}, v70,
			want{prepNot: true}},
		{"connect before 7.2 has no data", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet4, AddrLen: 16}}, v70,
			want{pdu: 0, words: map[int]uint32{4: 0, 5: 0}}},
		{"connect inet", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet4, AddrLen: 16}}, v72,
			want{pdu: 24, words: map[int]uint32{4: 2, 5: uint32(ne.Uint16([]byte{0x1f, 0x90})), 6: ne.Uint32([]byte{192, 0, 2, 1})}}},
		{"connect inet short", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet4, AddrLen: 15}}, v72,
			want{pdu: 24, words: map[int]uint32{4: 2, 5: 0, 6: 0}}},
		{"connect inet6 rfc2133", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet6, AddrLen: 24}}, v73,
			want{pdu: 24, words: map[int]uint32{4: 10, 6: ne.Uint32([]byte{0x20, 0x01, 0, 0}), 9: ne.Uint32([]byte{0, 0, 0, 7})}}},
		{"connect inet6 23", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet6, AddrLen: 23}}, v73,
			want{pdu: 24, words: map[int]uint32{4: 10, 5: 0, 6: 0, 9: 0}}},
		{"connect len 1", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: inet4, AddrLen: 1}}, v73,
			want{pdu: 24, words: map[int]uint32{4: 0}}},
		{"connect len too big", Request{Op: abi.OpConnect, Connect: ConnectArgs{Addr: make([]byte, 200), AddrLen: 129}}, v73,
			want{prepNot: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, ok := c.req.Ctx(c.k)
			if ok == c.want.prepNot {
				t.Fatalf("prepOK = %v, want %v", ok, !c.want.prepNot)
			}
			if !ok {
				return
			}
			if ctx.Opcode != uint8(c.req.Op) || ctx.SQEFlags != c.want.flags || ctx.PDUSize != c.want.pdu {
				t.Errorf("opcode %d flags %#x pdu %d, want %d %#x %d", ctx.Opcode, ctx.SQEFlags, ctx.PDUSize, c.req.Op, c.want.flags, c.want.pdu)
			}
			b := ctx.Encode(ne)
			for w, v := range c.want.words {
				if got := ne.Uint32(b[4*w:]); got != v {
					t.Errorf("word %d = %#x, want %#x", w, got, v)
				}
			}
		})
	}
}

// TestRequestSQE checks the SQE fields each opcode's arguments go to.
func TestRequestSQE(t *testing.T) {
	s := Request{Op: abi.OpSocket, UserData: 9, Flags: abi.IOSQEAsync, Socket: SocketArgs{10, 2, 17}}.SQE()
	if s.FD != 10 || s.Off != 2 || s.Len != 17 || s.UserData != 9 || s.Flags != abi.IOSQEAsync {
		t.Errorf("SOCKET SQE %+v", s)
	}
	o := Request{Op: abi.OpOpenat, Open: OpenArgs{Dir: -100, Path: "p", Flags: 0o102, Mode: 0o600}}.SQE()
	if o.FD != -100 || o.OpFlags != 0o102 || o.Len != 0o600 || o.Addr == 0 || len(o.Keep) != 1 {
		t.Errorf("OPENAT SQE %+v", o)
	}
	o2 := Request{Op: abi.OpOpenat2, Open: OpenArgs{Path: "p", HowSize: 32}}.SQE()
	if o2.Len != 32 || o2.Off == 0 || len(o2.Keep) != 2 || len(o2.Keep[1].([]byte)) != 32 {
		t.Errorf("OPENAT2 SQE %+v", o2)
	}
	c := Request{Op: abi.OpConnect, Connect: ConnectArgs{FD: 3, Addr: []byte{2, 0}, AddrLen: 2}}.SQE()
	if c.FD != 3 || c.Off != 2 || c.Addr == 0 {
		t.Errorf("CONNECT SQE %+v", c)
	}
	if c0 := (Request{Op: abi.OpConnect}).SQE(); c0.Addr != 0 {
		t.Errorf("CONNECT without address has pointer %#x", c0.Addr)
	}
	var raw [64]byte
	s.encode(raw[:])
	if raw[0] != byte(abi.OpSocket) || raw[1] != abi.IOSQEAsync || binary.NativeEndian.Uint32(raw[4:]) != 10 ||
		binary.NativeEndian.Uint64(raw[8:]) != 2 || binary.NativeEndian.Uint32(raw[24:]) != 17 || binary.NativeEndian.Uint64(raw[32:]) != 9 {
		t.Errorf("encoded SQE % x", raw)
	}
}
