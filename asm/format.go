package asm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ringfence/ringfence/cbpf"
)

// Format is an encoding of a program that Marshal writes and Unmarshal
// reads.
type Format string

// The program formats.
const (
	// FormatAsm is assembly source, as Disassemble prints it.
	FormatAsm Format = "asm"
	// FormatJSON is an array of [code, jt, jf, k] arrays of decimal numbers.
	FormatJSON Format = "json"
	// FormatC is a C array of struct sock_filter initializers,
	// "struct sock_filter prog[] = {{0x20, 0, 0, 0x00000010}, ...};".
	FormatC Format = "c"
	// FormatGo is a Go literal, "[]cbpf.Instruction{{Op: 0x20, Jt: 0, Jf: 0, K: 0x10}, ...}".
	FormatGo Format = "go"
	// FormatRaw is the kernel's struct sock_filter array as bytes.
	FormatRaw Format = "raw"
)

// Formats lists the formats in the order help texts show them.
func Formats() []Format {
	return []Format{FormatJSON, FormatC, FormatGo, FormatRaw, FormatAsm}
}

// ParseFormat parses a format name ("json", "c", "go", "raw", "asm").
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown program format %q: want json, c, go, raw or asm", s)
}

// Marshal encodes prog in format f. bo is the byte order of raw output and
// of assembly's word names (nil means little-endian). Text formats end with
// a newline.
func Marshal(prog []cbpf.Instruction, f Format, bo binary.ByteOrder) ([]byte, error) {
	var b bytes.Buffer
	switch f {
	case FormatAsm:
		b.WriteString(Disassemble(prog, Options{ByteOrder: bo}))
	case FormatJSON:
		b.WriteString("[")
		for i, in := range prog {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n  [%d, %d, %d, %d]", in.Op, in.Jt, in.Jf, in.K)
		}
		if len(prog) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("]\n")
	case FormatC:
		b.WriteString("struct sock_filter prog[] = {\n")
		for _, in := range prog {
			fmt.Fprintf(&b, "\t{0x%02x, %d, %d, 0x%08x},\n", in.Op, in.Jt, in.Jf, in.K)
		}
		b.WriteString("};\n")
	case FormatGo:
		b.WriteString("[]cbpf.Instruction{\n")
		for _, in := range prog {
			fmt.Fprintf(&b, "\t{Op: %#02x, Jt: %d, Jf: %d, K: %#x},\n", in.Op, in.Jt, in.Jf, in.K)
		}
		b.WriteString("}\n")
	case FormatRaw:
		b.Write(cbpf.Encode(prog, orDefault(bo)))
	default:
		return nil, fmt.Errorf("unknown program format %q: want json, c, go, raw or asm", f)
	}
	return b.Bytes(), nil
}

// Unmarshal decodes a program in format f. bo is the byte order of raw
// input (nil means little-endian); assembly declares its own with .endian.
// Errors locate the problem by line and column, or by instruction index.
func Unmarshal(data []byte, f Format, bo binary.ByteOrder) ([]cbpf.Instruction, error) {
	switch f {
	case FormatAsm:
		return Assemble(data, "<input>")
	case FormatJSON:
		return unmarshalJSON(data)
	case FormatC, FormatGo:
		return unmarshalLiteral(data)
	case FormatRaw:
		return cbpf.Decode(data, orDefault(bo))
	}
	return nil, fmt.Errorf("unknown program format %q: want json, c, go, raw or asm", f)
}

// ParseAny reads a program in any format, detected with Detect. Raw bytes
// are read as little-endian. Empty input is an error.
func ParseAny(data []byte) ([]cbpf.Instruction, error) {
	if len(data) == 0 {
		return nil, errors.New("empty input: no program")
	}
	return Unmarshal(data, Detect(data), binary.LittleEndian)
}

// Detect guesses the format of data:
//   - raw if it holds a NUL byte or is not UTF-8 (every valid instruction
//     code has a zero byte in its 16-bit field);
//   - JSON if it starts with "[[" or is "[]" (spaces allowed between);
//   - Go if it starts with "[]" followed by more, or mentions
//     "cbpf.Instruction" before any assembly statement;
//   - C if it starts with "{" or, after a first word that is not an
//     assembly mnemonic, directive or label, holds a "{";
//   - assembly otherwise.
//
// Leading blank space and comments (";", "//", "/* */" and C "#" lines)
// are skipped.
func Detect(data []byte) Format {
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return FormatRaw
	}
	s := skipSpaceAndComments(string(data))
	switch {
	case s == "":
		return FormatAsm
	case s[0] == '[':
		rest := strings.TrimLeft(s[1:], " \t\r\n")
		if strings.HasPrefix(rest, "[") {
			return FormatJSON
		}
		if strings.HasPrefix(rest, "]") && strings.TrimSpace(rest[1:]) == "" {
			return FormatJSON
		}
		return FormatGo
	case s[0] == '{':
		return FormatC
	}
	end := 0
	for end < len(s) && isIdentChar(s[end]) {
		end++
	}
	first := strings.ToLower(s[:end])
	if end == 0 || strings.HasPrefix(first, ".") || strings.HasPrefix(strings.TrimLeft(s[end:], " \t"), ":") && !strings.HasPrefix(strings.TrimLeft(s[end:], " \t"), ":=") {
		return FormatAsm
	}
	for _, m := range mnemonics() {
		if first == m {
			return FormatAsm
		}
	}
	if strings.Contains(s, "cbpf.Instruction") || strings.Contains(s, "Instruction{") {
		return FormatGo
	}
	if strings.Contains(s, "{") {
		return FormatC
	}
	return FormatAsm
}

// skipSpaceAndComments drops leading blank space and comments.
func skipSpaceAndComments(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n\v\f")
		switch {
		case strings.HasPrefix(s, ";"), strings.HasPrefix(s, "//"), strings.HasPrefix(s, "#"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[i+4:]
		default:
			return s
		}
	}
}

// lineCol converts a byte offset in data to a 1-based line and column.
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off + 1
	if i := bytes.LastIndexByte(data[:off], '\n'); i >= 0 {
		col = off - i
	}
	return line, col
}

// unmarshalJSON reads [[code, jt, jf, k], ...].
func unmarshalJSON(data []byte) ([]cbpf.Instruction, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var rows [][]json.Number
	if err := dec.Decode(&rows); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			l, c := lineCol(data, int(se.Offset)-1)
			return nil, &Error{Line: l, Col: c, Msg: "bad JSON: " + se.Error()}
		case errors.Is(err, io.ErrUnexpectedEOF):
			l, c := lineCol(data, len(data))
			return nil, &Error{Line: l, Col: c, Msg: "bad JSON: the program ends early"}
		case errors.As(err, &te):
			l, c := lineCol(data, int(te.Offset)-1)
			return nil, &Error{Line: l, Col: c, Msg: "a JSON program is an array of [code, jt, jf, k] arrays of numbers"}
		}
		return nil, fmt.Errorf("bad JSON program: %v", err)
	}
	if dec.More() {
		l, c := lineCol(data, int(dec.InputOffset()))
		return nil, &Error{Line: l, Col: c, Msg: "unexpected data after the JSON program"}
	}
	if _, err := dec.Token(); err == nil {
		l, c := lineCol(data, int(dec.InputOffset()))
		return nil, &Error{Line: l, Col: c, Msg: "unexpected data after the JSON program"}
	}
	prog := make([]cbpf.Instruction, len(rows))
	for i, r := range rows {
		in, err := fromFields(r)
		if err != nil {
			return nil, fmt.Errorf("instruction %d: %v", i, err)
		}
		prog[i] = in
	}
	return prog, nil
}

// fromFields builds an instruction from [code, jt, jf, k].
func fromFields(r []json.Number) (cbpf.Instruction, error) {
	if len(r) != 4 {
		return cbpf.Instruction{}, fmt.Errorf("has %d fields, want [code, jt, jf, k]", len(r))
	}
	var v [4]uint64
	limits := [4]uint64{0xffff, 0xff, 0xff, 0xffffffff}
	names := [4]string{"code", "jt", "jf", "k"}
	for j, n := range r {
		x, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil || x > limits[j] {
			return cbpf.Instruction{}, fmt.Errorf("%s %s is not an integer from 0 to %d", names[j], n, limits[j])
		}
		v[j] = x
	}
	return cbpf.Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}, nil
}
