package abi

import (
	"encoding/binary"
	"fmt"
)

// View names which part of the per-opcode union a field belongs to.
type View uint8

// The views of the context. ViewCommon fields exist for every opcode.
const (
	ViewCommon View = iota
	ViewSocket
	ViewOpen
	ViewConnect
)

// String returns the view's name as used in field names ("socket").
func (v View) String() string {
	switch v {
	case ViewCommon:
		return "common"
	case ViewSocket:
		return "socket"
	case ViewOpen:
		return "open"
	case ViewConnect:
		return "connect"
	}
	return fmt.Sprintf("View(%d)", uint8(v))
}

// Field describes one named field of struct io_uring_bpf_ctx.
type Field struct {
	// Name is the dotted name a policy or assembly author writes,
	// such as "socket.family" or "open.flags".
	Name string
	// View is the part of the union the field belongs to.
	View View
	// Off is the field's byte offset in the context.
	Off int
	// Size is the field's size in bytes: 1, 2, 4, 8 or 16.
	Size int
	// Network is true for fields stored in network (big-endian) byte
	// order whatever the machine's order: connect.port and connect.addr.
	Network bool
}

// Fields lists every named field of the context, in offset order within
// each view. The slice is freshly allocated on each call.
func Fields() []Field {
	return []Field{
		{Name: "user_data", View: ViewCommon, Off: OffUserData, Size: 8},
		{Name: "opcode", View: ViewCommon, Off: OffOpcode, Size: 1},
		{Name: "sqe_flags", View: ViewCommon, Off: OffSQEFlags, Size: 1},
		{Name: "pdu_size", View: ViewCommon, Off: OffPDUSize, Size: 1},
		{Name: "socket.family", View: ViewSocket, Off: OffSocketFamily, Size: 4},
		{Name: "socket.type", View: ViewSocket, Off: OffSocketType, Size: 4},
		{Name: "socket.protocol", View: ViewSocket, Off: OffSocketProtocol, Size: 4},
		{Name: "open.flags", View: ViewOpen, Off: OffOpenFlags, Size: 8},
		{Name: "open.mode", View: ViewOpen, Off: OffOpenMode, Size: 8},
		{Name: "open.resolve", View: ViewOpen, Off: OffOpenResolve, Size: 8},
		{Name: "connect.family", View: ViewConnect, Off: OffConnectFamily, Size: 4},
		{Name: "connect.port", View: ViewConnect, Off: OffConnectPort, Size: 2, Network: true},
		{Name: "connect.addr", View: ViewConnect, Off: OffConnectAddr, Size: 16, Network: true},
	}
}

// LookupField returns the field with the given dotted name.
func LookupField(name string) (Field, bool) {
	for _, f := range Fields() {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// WordPart says where some bytes of a field sit inside the 32-bit word a
// classic BPF program loads with "ld [Word]": the value of those bytes is
// (A >> Shift) & Mask after the load.
type WordPart struct {
	Word  uint32 // byte offset of the aligned 32-bit word in the context
	Shift uint   // right shift that brings the field's bits to bit 0
	Mask  uint32 // mask of the field's bits after the shift
}

// Parts returns how a field of Size 1, 2 or 4 sits in its loaded word under
// byte order bo. For Size 1 and 2 fields the result says which bits of the
// native-order word hold the bytes; for a Network field the value so
// extracted is still in network order (byte-swapped relative to the host
// value on a little-endian machine). Fields of Size 8 and 16 span several
// words: use Words.
func (f Field) Parts(bo binary.ByteOrder) WordPart {
	word := uint32(f.Off &^ 3)
	byteInWord := f.Off & 3
	var shift uint
	if bo == binary.BigEndian || bo.String() == binary.BigEndian.String() {
		shift = uint(8 * (4 - byteInWord - f.Size))
	} else {
		shift = uint(8 * byteInWord)
	}
	mask := uint32(0xffffffff)
	if f.Size < 4 {
		mask = uint32(1)<<(8*f.Size) - 1
	}
	return WordPart{Word: word, Shift: shift, Mask: mask}
}

// Words returns the context offsets of the 32-bit words that make up a
// field, least significant first for numeric fields of Size 8 (the "lo"
// then the "hi" half under byte order bo), and in memory order for
// Network fields. Fields of Size 4 or less return their one word.
func (f Field) Words(bo binary.ByteOrder) []uint32 {
	if f.Size <= 4 {
		return []uint32{uint32(f.Off &^ 3)}
	}
	n := f.Size / 4
	w := make([]uint32, n)
	for i := range w {
		w[i] = uint32(f.Off + 4*i)
	}
	if f.Size == 8 && !f.Network && bo.String() == binary.BigEndian.String() {
		w[0], w[1] = w[1], w[0]
	}
	return w
}
