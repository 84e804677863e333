package asm

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// Names of the context words that are not a field of their own.
const (
	// WordOpFlagsPDU names the word at offset 8, which holds three u8
	// fields (opcode, sqe_flags, pdu_size) and the first padding byte.
	WordOpFlagsPDU = "op_flags_pdu"
	// WordPad names the word at offset 12: padding, always zero.
	WordPad = "pad"
)

// word is one named 32-bit word of the context.
type word struct {
	name  string
	off   uint32
	view  abi.View
	group abi.Group // the constant group of the word's value, "" if none
	kind  wordKind
}

// wordKind says how the disassembler may name constants compared with the
// word.
type wordKind uint8

const (
	kindPlain  wordKind = iota // a number, or constants of its group
	kindPort                   // connect.port: port(N)
	kindAddr                   // first word of connect.addr: ip4(a.b.c.d)
	kindOpWord                 // op_flags_pdu
)

// fieldGroup returns the constant group for a field's values.
func fieldGroup(name string) abi.Group {
	switch name {
	case "socket.family", "connect.family":
		return abi.GroupFamily
	case "socket.type":
		return abi.GroupSockType
	case "socket.protocol":
		return abi.GroupProto
	case "open.flags":
		return abi.GroupOpen
	case "open.mode":
		return abi.GroupMode
	case "open.resolve":
		return abi.GroupResolve
	case "sqe_flags":
		return abi.GroupSQE
	}
	return ""
}

// contextWords returns every named word of the context under byte order
// bo, in a fixed order: the common words, then the socket, open and
// connect views, each by offset.
func contextWords(bo binary.ByteOrder) []word {
	ws := []word{
		{name: WordOpFlagsPDU, off: abi.OffOpcode, view: abi.ViewCommon, kind: kindOpWord},
		{name: WordPad, off: 12, view: abi.ViewCommon},
	}
	for _, f := range abi.Fields() {
		g := fieldGroup(f.Name)
		switch {
		case f.Size == 1:
			// opcode, sqe_flags, pdu_size: part of op_flags_pdu.
		case f.Size == 8:
			offs := f.Words(bo)
			ws = append(ws,
				word{name: f.Name + ".lo", off: offs[0], view: f.View, group: g},
				word{name: f.Name + ".hi", off: offs[1], view: f.View})
		case f.Size == 16:
			for i, off := range f.Words(bo) {
				n := f.Name
				k := kindAddr
				if i > 0 {
					n = fmt.Sprintf("%s.%d", f.Name, i)
					k = kindPlain
				}
				ws = append(ws, word{name: n, off: off, view: f.View, kind: k})
			}
		case f.Name == "connect.port":
			ws = append(ws, word{name: f.Name, off: f.Words(bo)[0], view: f.View, kind: kindPort})
		default:
			ws = append(ws, word{name: f.Name, off: f.Words(bo)[0], view: f.View, group: g})
		}
	}
	return ws
}

// wordAt returns the name of the context word at offset off in view v, if
// it has one. Words of the per-opcode union are only named for the view
// they belong to.
func wordAt(off uint32, v abi.View, bo binary.ByteOrder) (word, bool) {
	for _, w := range contextWords(bo) {
		if w.off == off && (w.view == abi.ViewCommon || w.view == v) {
			return w, true
		}
	}
	return word{}, false
}

// lookupWord resolves a word name written in "ld [name]". If view is not
// ViewCommon, only common words and that view's words are accepted. On
// failure the error message explains what the author can write instead.
func lookupWord(name string, view abi.View, bo binary.ByteOrder) (word, string) {
	if name == "connect.addr.0" {
		name = "connect.addr"
	}
	ws := contextWords(bo)
	for _, w := range ws {
		if w.name != name {
			continue
		}
		if view != abi.ViewCommon && w.view != abi.ViewCommon && w.view != view {
			return word{}, fmt.Sprintf("%s belongs to the %s view, but this file declares .view %s", name, w.view, view)
		}
		return w, ""
	}
	if f, ok := abi.LookupField(name); ok {
		switch f.Size {
		case 1:
			p := f.Parts(bo)
			return word{}, fmt.Sprintf("%s is a 1-byte field inside the word %s at offset 8: load [%s], then it is (A >> %d) & 0xff",
				name, WordOpFlagsPDU, WordOpFlagsPDU, p.Shift)
		case 8:
			return word{}, fmt.Sprintf("%s is 64 bits wide; load its 32-bit halves %s.lo and %s.hi", name, name, name)
		}
	}
	names := make([]string, 0, len(ws))
	for _, w := range ws {
		names = append(names, w.name)
	}
	msg := fmt.Sprintf("unknown context word %q", name)
	if s := abi.DidYouMean(name, names); s != "" {
		msg += s
	} else {
		msg += " (write a field such as socket.family, open.flags.lo, connect.port, or a byte offset such as [16])"
	}
	return word{}, msg
}

// parseView parses a view name as written after .view.
func parseView(s string) (abi.View, bool) {
	for _, v := range []abi.View{abi.ViewCommon, abi.ViewSocket, abi.ViewOpen, abi.ViewConnect} {
		if strings.EqualFold(s, v.String()) {
			return v, true
		}
	}
	return 0, false
}

// isBig reports whether bo is big-endian. A nil order means little-endian.
func isBig(bo binary.ByteOrder) bool {
	return bo != nil && bo.String() == binary.BigEndian.String()
}

// orDefault returns bo, or little-endian if bo is nil.
func orDefault(bo binary.ByteOrder) binary.ByteOrder {
	if bo == nil {
		return binary.LittleEndian
	}
	return bo
}

// ParseView parses a view name (common, socket, open, connect) or an
// opcode name (SOCKET, IORING_OP_OPENAT2, 16), which stands for the view of
// that opcode's data.
func ParseView(s string) (abi.View, error) {
	if v, ok := parseView(s); ok {
		return v, nil
	}
	if o, ok := abi.LookupOpcode(s); ok {
		return o.View, nil
	}
	return 0, fmt.Errorf("unknown view %q: want common, socket, open, connect or an opcode name", s)
}
