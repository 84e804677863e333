package asm

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// expr parses a constant expression: terms joined by '|'. A term is a
// number, a constant name, port(N) or ip4(a.b.c.d).
func (p *parser) expr() (uint32, error) {
	start := p.peek()
	var v uint64
	for {
		x, err := p.term()
		if err != nil {
			return 0, err
		}
		v |= x
		if !p.isPunct("|") {
			break
		}
		p.next()
	}
	if v > 0xffffffff {
		return 0, errAt(start, "value %#x does not fit in 32 bits", v)
	}
	return uint32(v), nil
}

func parseNumber(t token) (uint64, error) {
	v, err := strconv.ParseUint(t.text, 0, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, errAt(t, "number %s does not fit in 32 bits", t.text)
		}
		return 0, errAt(t, "bad number %q (write decimal, 0x hex, 0o or leading-0 octal, or 0b binary)", t.text)
	}
	return v, nil
}

func (p *parser) term() (uint64, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return parseNumber(t)
	case tIdent:
		if p.isPunct("(") {
			return p.call(t)
		}
		return p.constant(t)
	}
	return 0, errAt(t, "expected a number or constant name, found %s", describe(t))
}

// constant resolves a constant name.
func (p *parser) constant(t token) (uint64, error) {
	if c, ok := abi.LookupConst(t.text, ""); ok {
		return c.Value, nil
	}
	if strings.HasPrefix(t.text, "IORING_OP_") {
		if o, ok := abi.LookupOpcode(t.text); ok {
			return uint64(o.Op), nil
		}
		var names []string
		for _, o := range abi.Opcodes() {
			names = append(names, o.KernelName())
		}
		return 0, errAt(t, "unknown opcode %q%s", t.text, abi.DidYouMean(t.text, names))
	}
	return 0, errAt(t, "unknown constant %q%s", t.text, abi.DidYouMean(t.text, abi.ConstNames("")))
}

// call evaluates port(N) and ip4(a.b.c.d), which give the value the
// connect.port word and the first connect.addr word hold for that port or
// address under the file's byte order.
func (p *parser) call(fn token) (uint64, error) {
	p.next() // (
	arg := p.next()
	var v uint64
	switch fn.text {
	case "port":
		if arg.kind != tNum {
			return 0, errAt(arg, "port() takes a port number, found %s", describe(arg))
		}
		n, err := parseNumber(arg)
		if err != nil {
			return 0, err
		}
		if n > 0xffff {
			return 0, errAt(arg, "port %d is larger than 65535", n)
		}
		v = uint64(portWord(uint16(n), p.bo))
	case "ip4":
		a, err := netip.ParseAddr(arg.text)
		if arg.kind != tNum || err != nil || !a.Is4() {
			return 0, errAt(arg, "ip4() takes an IPv4 address such as 127.0.0.1, found %s", describe(arg))
		}
		b := a.As4()
		v = uint64(p.bo.Uint32(b[:]))
	default:
		return 0, errAt(fn, "unknown function %q: use port(N) or ip4(a.b.c.d)", fn.text)
	}
	return v, p.expect(")", "')' closing "+fn.text+"(")
}

// portWord returns the value of the word at connect.port, loaded in byte
// order bo, for port n: the port is stored in network order, followed by
// two zero bytes.
func portWord(n uint16, bo binary.ByteOrder) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], n)
	return orDefault(bo).Uint32(b[:])
}
