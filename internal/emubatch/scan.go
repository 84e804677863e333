package emubatch

import (
	"encoding/hex"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// scanner reads the usual form of a request line without reflection. Each
// method consumes what it reads and reports whether it found it; on false
// the line is left to slowRequest, which decides what it is.
type scanner struct {
	line []byte
	i    int
}

// fieldLimit returns the largest value of field j of an instruction
// ([code, jt, jf, k]).
func fieldLimit(j int) uint64 { return [4]uint64{0xffff, 0xff, 0xff, 0xffffffff}[j] }

// fastRequest reads the usual form of a request line,
// {"prog": [[n, n, n, n], ...], "ctx": "<hex>"} in either key order with
// any JSON white space. ok is false for anything else (escapes, duplicate
// or other keys, numbers out of range or not plain integers...): the
// caller then asks slowRequest, which decides.
func fastRequest(line []byte, ctx *[abi.CtxSize]byte) (insns []cbpf.Instruction, ok bool) {
	s := &scanner{line: line}
	var haveProg, haveCtx bool
	if !s.lit('{') {
		return nil, false
	}
	for {
		key, ok := s.str()
		if !ok || !s.lit(':') {
			return nil, false
		}
		switch {
		case string(key) == "prog" && !haveProg:
			haveProg = true
			if insns, ok = s.prog(); !ok {
				return nil, false
			}
		case string(key) == "ctx" && !haveCtx:
			haveCtx = true
			if !s.ctx(ctx) {
				return nil, false
			}
		default:
			return nil, false
		}
		if s.lit('}') {
			break
		}
		if !s.lit(',') {
			return nil, false
		}
	}
	s.ws()
	return insns, haveProg && haveCtx && s.i == len(s.line)
}

// ws skips JSON white space.
func (s *scanner) ws() {
	for s.i < len(s.line) {
		switch s.line[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// lit reads the character c after white space.
func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.line) && s.line[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *scanner) str() ([]byte, bool) {
	if !s.lit('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.line) && s.line[s.i] != '"' {
		if c := s.line[s.i]; c == '\\' || c < 0x20 || c >= 0x80 {
			return nil, false
		}
		s.i++
	}
	if s.i == len(s.line) {
		return nil, false
	}
	s.i++
	return s.line[start : s.i-1], true
}

// number reads a plain decimal integer of at most 10 digits, no leading
// zero, at most limit.
func (s *scanner) number(limit uint64) (uint64, bool) {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.line) && s.line[s.i] >= '0' && s.line[s.i] <= '9' && s.i-start < 11 {
		v = v*10 + uint64(s.line[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 10 || n > 1 && s.line[start] == '0' || v > limit {
		return 0, false
	}
	return v, true
}

// insn reads one instruction, [code, jt, jf, k].
func (s *scanner) insn() (cbpf.Instruction, bool) {
	var f [4]uint64
	if !s.lit('[') {
		return cbpf.Instruction{}, false
	}
	for j := range f {
		var ok bool
		if j > 0 && !s.lit(',') {
			return cbpf.Instruction{}, false
		}
		if f[j], ok = s.number(fieldLimit(j)); !ok {
			return cbpf.Instruction{}, false
		}
	}
	if !s.lit(']') {
		return cbpf.Instruction{}, false
	}
	return cbpf.Instruction{Op: uint16(f[0]), Jt: uint8(f[1]), Jf: uint8(f[2]), K: uint32(f[3])}, true
}

// prog reads the program: a list of instructions, possibly empty.
func (s *scanner) prog() ([]cbpf.Instruction, bool) {
	if !s.lit('[') {
		return nil, false
	}
	insns := []cbpf.Instruction{}
	if s.lit(']') {
		return insns, true
	}
	for {
		in, ok := s.insn()
		if !ok {
			return nil, false
		}
		insns = append(insns, in)
		if s.lit(']') {
			return insns, true
		}
		if !s.lit(',') {
			return nil, false
		}
	}
}

// ctx reads the context: exactly 80 hex digits.
func (s *scanner) ctx(ctx *[abi.CtxSize]byte) bool {
	h, ok := s.str()
	if !ok || len(h) != 2*abi.CtxSize {
		return false
	}
	_, err := hex.Decode(ctx[:], h)
	return err == nil
}
