// Package emubatch is the batch mode of "ringfence emu --jsonl": it reads
// one request per line,
//
//	{"prog": [[code, jt, jf, k], ...], "ctx": "<80 hex digits>"}
//
// checks the program as the kernel would, runs it on the context with the
// emulator, and writes one answer per line,
//
//	{"valid": true, "ret": N, "allow": BOOL}  or  {"valid": false, "error": "..."}
//
// encoding/json (slowRequest) is the authority on what a well-formed line
// is; a small scanner (fastRequest) reads the usual form of a line without
// reflection first, and gives up on anything else.
package emubatch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// input is one request line.
type input struct {
	Prog [][]json.Number `json:"prog"`
	Ctx  *string         `json:"ctx"`
}

// Run answers the request lines of r on w, one output line per input
// line, in byte order bo. It flushes its answers whenever it is about to
// wait for input, so a tool driving it line by line gets each answer.
// malformed is true when some line was not a well-formed request; err is a
// failure to read or write.
func Run(r io.Reader, w io.Writer, bo binary.ByteOrder) (malformed bool, err error) {
	in := bufio.NewReaderSize(r, 1<<16)
	out := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		if in.Buffered() == 0 {
			// About to block on input: let a driving tool see the
			// answers so far.
			if err := out.Flush(); err != nil {
				return malformed, err
			}
		}
		line, tooLong, err := readLine(in, MaxLine)
		if len(line) == 0 && !tooLong && err != nil {
			if err != io.EOF {
				out.Flush()
				return malformed, err
			}
			break
		}
		if tooLong {
			// A line this long is no request; an endless one (/dev/zero)
			// would be read forever: answer it and stop.
			fmt.Fprintf(out, "{\"valid\":false,\"error\":\"bad input line %d: longer than %d bytes\"}\n", lineNo, MaxLine)
			if err := out.Flush(); err != nil {
				return true, err
			}
			return true, fmt.Errorf("input line %d is longer than %d bytes (1 MiB): stopped reading", lineNo, MaxLine)
		}
		var bad bool
		buf, bad = Answer(buf[:0], line, lineNo, bo)
		malformed = malformed || bad
		out.Write(buf)
	}
	return malformed, out.Flush()
}

// MaxLine is the longest line Run reads: a program at the
// kernel's limit (4096 instructions, each at most 27 bytes as
// [65535,255,255,4294967295],) is about 112 KiB.
const MaxLine = 1 << 20

// readLine reads one line (with its newline) of at most max bytes. For a
// longer line it stops reading as soon as it is past max and returns
// tooLong, so an endless line never fills memory or time.
func readLine(in *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := in.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, true, nil
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, false, err
		}
	}
}

// strictKeys checks the top-level keys of a request line as policy files
// are checked: exactly "prog" and "ctx", each once, in lower case
// (encoding/json would take "PROG" for "prog" and the last of two "ctx").
// It returns "" when the line is not an object, for Decode to report.
func strictKeys(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := t.(string)
		if k != "prog" && k != "ctx" {
			return fmt.Sprintf("unknown key %q (the keys are \"prog\" and \"ctx\", in lower case)", k)
		}
		if seen[k] {
			return fmt.Sprintf("duplicate key %q", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// Answer answers one input line (number lineNo, for messages), appending
// the output line to dst. malformed is true when the line is not a
// well-formed request.
func Answer(dst, line []byte, lineNo int, bo binary.ByteOrder) (out []byte, malformed bool) {
	var ctx [abi.CtxSize]byte
	insns, ok := fastRequest(line, &ctx)
	if !ok {
		var msg string
		if insns, msg = slowRequest(line, &ctx); msg != "" {
			return appendInvalid(dst, fmt.Sprintf("bad input line %d: %s", lineNo, msg)), true
		}
	}
	p, err := cbpf.Check(insns)
	if err != nil {
		return appendInvalid(dst, err.Error()), false
	}
	w := cbpf.WordsOf(ctx, bo)
	ret := p.Run(&w)
	dst = append(dst, `{"valid":true,"ret":`...)
	dst = strconv.AppendUint(dst, uint64(ret), 10)
	dst = append(dst, `,"allow":`...)
	dst = strconv.AppendBool(dst, ret != 0)
	return append(dst, "}\n"...), false
}

// appendInvalid appends the answer line of a request that is not run:
// valid false, and msg as the error.
func appendInvalid(dst []byte, msg string) []byte {
	m, _ := json.Marshal(msg)
	dst = append(dst, `{"valid":false,"error":`...)
	dst = append(dst, m...)
	return append(dst, "}\n"...)
}

// slowRequest parses a request line with encoding/json, which is the
// authority on what a well-formed line is. msg says what is wrong with a
// malformed line.
func slowRequest(line []byte, ctx *[abi.CtxSize]byte) (insns []cbpf.Instruction, msg string) {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, "empty line"
	}
	if msg := strictKeys(line); msg != "" {
		return nil, msg
	}
	var req input
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "more than one JSON value on the line"
	}
	if req.Prog == nil {
		return nil, `missing "prog"`
	}
	if req.Ctx == nil {
		return nil, `missing "ctx"`
	}
	if len(*req.Ctx) != 2*abi.CtxSize {
		return nil, fmt.Sprintf("ctx has %d hex digits, want %d", len(*req.Ctx), 2*abi.CtxSize)
	}
	if _, err := hex.Decode(ctx[:], []byte(*req.Ctx)); err != nil {
		return nil, "ctx: " + err.Error()
	}
	insns = make([]cbpf.Instruction, len(req.Prog))
	for i, r := range req.Prog {
		if len(r) != 4 {
			return nil, fmt.Sprintf("instruction %d has %d fields, want [code, jt, jf, k]", i, len(r))
		}
		var v [4]uint64
		for j, n := range r {
			x, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil || x > fieldLimit(j) {
				return nil, fmt.Sprintf("instruction %d: field %d is %s, want an integer from 0 to %d", i, j, n, fieldLimit(j))
			}
			v[j] = x
		}
		insns[i] = cbpf.Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return insns, ""
}
