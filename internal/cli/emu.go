package cli

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/policy"
)

// emuCommand is "ringfence emu".
func emuCommand() *command {
	return &command{
		name:    "emu",
		args:    "PROG",
		summary: "run a filter program on a context, as the kernel does",
		help: `Runs a program on one filter context, as the kernel does, and prints the
verdict. PROG is assembly or any program format "ringfence disasm" reads
("-" for standard input); the kernel's checker runs first.

CTX is 80 hex digits (the 40 bytes of struct io_uring_bpf_ctx), or a
request as "ringfence explain --sqe" takes it, key=value pairs:
  opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM user_data=7
  op=OPENAT flags=O_CREAT|O_RDWR mode=0o644 resolve=RESOLVE_BENEATH
  op=CONNECT addr=127.0.0.1 port=80 sqe_flags=IOSQE_ASYNC
(op= or opcode=, full or short field names, values as in policies), and
pdu_size=N. Unset fields are zero; connect.addr sets connect.family too.
Without an opcode (a NOP), the fields choose the opcode's data. When the
opcode passes data to filters on kernel --kernel, pdu_size is set to the
kernel's size for it.

With --jsonl there is no PROG: emu reads one JSON object per line from
standard input,
  {"prog": [[code, jt, jf, k], ...], "ctx": "<80 hex digits>"}
and writes one line per input line,
  {"valid": true, "ret": N, "allow": BOOL} or {"valid": false, "error": "..."}.
A malformed line gets {"valid": false, "error": "bad input: ..."}.

Exit status: 0 allowed, 1 denied or the program is rejected, 2 bad usage or
input (with --jsonl: 2 if any line was malformed, else 0).`,
		setup: func(fs *flag.FlagSet) action {
			ctxArg := fs.String("ctx", "", "the filter context `CTX`: 80 hex digits or field assignments")
			trace := fs.Bool("trace", false, "print the instructions executed")
			format := fs.String("format", "auto", "program `FORMAT`: auto, json, c, go, raw or asm")
			endian := fs.String("endian", "", "byte `ORDER` of the machine: little (default) or big")
			kernel := fs.String("kernel", "7.3", "kernel `VERSION` deciding which opcodes carry data")
			jsonl := fs.Bool("jsonl", false, "batch mode: JSON lines on standard input")
			return func(e *env, args []string) error {
				bo, err := parseEndian(*endian)
				if err != nil {
					return usagef("--endian: %v", err)
				}
				if *jsonl {
					if len(args) != 0 || *ctxArg != "" || *trace {
						return usagef("--jsonl takes its programs and contexts from standard input; no PROG, --ctx or --trace")
					}
					if bo == nil {
						bo = binary.LittleEndian
					}
					return emuJSONL(e, bo)
				}
				if len(args) != 1 {
					return usagef("give one PROG (or --jsonl)")
				}
				kv, err := abi.ParseVersion(*kernel)
				if err != nil {
					return usagef("--kernel: %v", err)
				}
				lp, err := loadProgram(e, args[0], *format, bo)
				if err != nil {
					return err
				}
				ctx, view, err := parseCtx(*ctxArg, lp.order(), kv)
				if err != nil {
					return usagef("--ctx: %v", err)
				}
				return emulate(e, lp, ctx, view, *trace)
			}
		},
	}
}

// emulate runs lp on ctx and prints the verdict, and with trace the
// instructions executed.
func emulate(e *env, lp *loadedProgram, ctx [abi.CtxSize]byte, view abi.View, trace bool) error {
	prog, err := lp.check()
	if err != nil {
		return fail(exitDenied, err)
	}
	if view == abi.ViewCommon {
		if info, ok := abi.Opcode(ctx[abi.OffOpcode]).Info(); ok {
			view = info.View
		}
	}
	w := cbpf.WordsOf(ctx, lp.order())
	ret, path := prog.Trace(&w)
	if trace {
		fmt.Fprintf(e.stdout, "context: %s\n", describeCtx(ctx, lp.order(), view))
		if lp.view != abi.ViewCommon {
			view = lp.view
		}
		lines := asm.Lines(lp.insns, asm.Options{ByteOrder: lp.bo, View: view})
		for _, pc := range path {
			where := ""
			if pc < len(lp.pos) {
				where = fmt.Sprintf("  (line %d)", lp.pos[pc].Line)
			}
			fmt.Fprintf(e.stdout, "%5d  %-40s%s\n", pc, lines[pc], where)
		}
	}
	if ret == 0 {
		fmt.Fprintf(e.stdout, "deny (returned 0)\n")
		return exitStatus(exitDenied)
	}
	fmt.Fprintf(e.stdout, "allow (returned %d)\n", ret)
	return nil
}

// describeCtx prints a context as field assignments, as --ctx reads them.
func describeCtx(raw [abi.CtxSize]byte, bo binary.ByteOrder, view abi.View) string {
	c, _ := abi.DecodeCtx(raw[:], bo)
	named := func(g abi.Group, v uint64) string {
		if n, ok := abi.ConstName(g, v); ok {
			return n
		}
		return fmt.Sprintf("%#x", v)
	}
	parts := []string{
		fmt.Sprintf("user_data=%d", c.UserData),
		"opcode=" + abi.Opcode(c.Opcode).String(),
		fmt.Sprintf("sqe_flags=%#x", c.SQEFlags),
		fmt.Sprintf("pdu_size=%d", c.PDUSize),
	}
	if c.Pad != ([5]byte{}) {
		parts = append(parts, fmt.Sprintf("padding=%x", c.Pad))
	}
	switch view {
	case abi.ViewSocket:
		d := c.Socket(bo)
		parts = append(parts, "socket.family="+named(abi.GroupFamily, uint64(d.Family)),
			fmt.Sprintf("socket.type=%#x", d.Type), "socket.protocol="+named(abi.GroupProto, uint64(d.Protocol)))
	case abi.ViewOpen:
		d := c.Open(bo)
		parts = append(parts, fmt.Sprintf("open.flags=%#o open.mode=%#o open.resolve=%#x", d.Flags, d.Mode, d.Resolve))
	case abi.ViewConnect:
		d := c.Connect(bo)
		addr := netip.AddrFrom16(d.Addr).String()
		if d.Family == 2 {
			addr = netip.AddrFrom4([4]byte(d.Addr[:4])).String()
		}
		parts = append(parts, "connect.family="+named(abi.GroupFamily, uint64(d.Family)),
			fmt.Sprintf("connect.port=%d", d.Port), "connect.addr="+addr)
	default:
		parts = append(parts, fmt.Sprintf("data=%x", c.PDU))
	}
	return strings.Join(parts, " ")
}

// parseCtx parses --ctx: 80 hex digits, or a request in ringfence's
// request syntax (policy.ParseRequestText) and emu's own pdu_size=N. It
// also returns the view of the opcode or fields named, for naming words in
// a trace.
func parseCtx(s string, bo binary.ByteOrder, kernel abi.Version) ([abi.CtxSize]byte, abi.View, error) {
	var raw [abi.CtxSize]byte
	compact := strings.Join(strings.Fields(s), "")
	if compact != "" && !strings.Contains(compact, "=") && strings.Trim(compact, "0123456789abcdefABCDEF") == "" && len(compact) != 2*abi.CtxSize {
		return raw, 0, fmt.Errorf("%d hex digits; raw context is %d (%d bytes)", len(compact), 2*abi.CtxSize, abi.CtxSize)
	}
	if len(compact) == 2*abi.CtxSize && !strings.Contains(compact, "=") {
		if _, err := hex.Decode(raw[:], []byte(compact)); err != nil {
			return raw, 0, fmt.Errorf("80 characters but not hex digits: %v", err)
		}
		return raw, abi.ViewCommon, nil
	}
	var pdu *uint8
	var words []string
	for _, a := range strings.Fields(s) {
		v, ok := strings.CutPrefix(a, "pdu_size=")
		if !ok {
			words = append(words, a)
			continue
		}
		if pdu != nil {
			return raw, 0, fmt.Errorf("pdu_size given twice")
		}
		n, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return raw, 0, fmt.Errorf("pdu_size=%s: want a number from 0 to 255", v)
		}
		p := uint8(n)
		pdu = &p
	}
	t, err := policy.ParseRequestText(strings.Join(words, " "))
	if err != nil {
		return raw, 0, err
	}
	r, view := t.Request, t.View
	if t.HaveOp {
		info, _ := r.Op.Info()
		for _, name := range t.Fields {
			if f, _ := policy.LookupField(name); f.View != abi.ViewCommon && !info.HasData(kernel) {
				return raw, 0, fmt.Errorf("%s passes no data to filters on Linux %s (only since %s), so %s is always 0 there", info.Name, kernel, info.DataSince, name)
			}
		}
		view = abi.ViewCommon
		if info.HasData(kernel) {
			view = info.View
		}
	}
	c := abi.Ctx{UserData: r.UserData, Opcode: uint8(r.Op), SQEFlags: r.SQEFlags}
	switch view {
	case abi.ViewSocket:
		c.SetSocket(r.Socket, bo)
	case abi.ViewOpen:
		c.SetOpen(r.Open, bo)
	case abi.ViewConnect:
		c.SetConnect(r.Connect, bo)
	}
	if pdu != nil {
		c.PDUSize = *pdu
	}
	return c.Encode(bo), view, nil
}

// jsonlInput is one line of "emu --jsonl".
type jsonlInput struct {
	Prog [][]json.Number `json:"prog"`
	Ctx  *string         `json:"ctx"`
}

// emuJSONL runs the batch mode.
func emuJSONL(e *env, bo binary.ByteOrder) error {
	in := bufio.NewReaderSize(e.stdin, 1<<16)
	out := bufio.NewWriterSize(e.stdout, 1<<16)
	var status error
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		if in.Buffered() == 0 {
			// About to block on input: let a driving tool see the
			// answers so far.
			if err := out.Flush(); err != nil {
				return err
			}
		}
		line, tooLong, err := readLine(in, maxJSONLLine)
		if len(line) == 0 && !tooLong && err != nil {
			if err != io.EOF {
				out.Flush()
				return err
			}
			break
		}
		var malformed bool
		if tooLong {
			buf = fmt.Appendf(buf[:0], "{\"valid\":false,\"error\":\"bad input line %d: longer than %d bytes\"}\n", lineNo, maxJSONLLine)
			malformed = true
		} else {
			buf, malformed = jsonlLine(buf[:0], line, lineNo, bo)
		}
		if malformed {
			status = exitStatus(exitUsage)
		}
		out.Write(buf)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	return status
}

// maxJSONLLine is the longest line "emu --jsonl" reads: a program at the
// kernel's limit (4096 instructions, each at most 27 bytes as
// [65535,255,255,4294967295],) is about 112 KiB.
const maxJSONLLine = 1 << 20

// readLine reads one line (with its newline) of at most max bytes. A
// longer line is read to its end and dropped: tooLong is true and line is
// nil, so an endless line never fills memory.
func readLine(in *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := in.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if err != bufio.ErrBufferFull {
			return line, tooLong, err
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

// jsonlLine answers one input line, appending the output line to dst.
// malformed is true when the line is not a well-formed request.
func jsonlLine(dst, line []byte, lineNo int, bo binary.ByteOrder) (out []byte, malformed bool) {
	var ctx [abi.CtxSize]byte
	insns, ok := fastRequest(line, &ctx)
	if !ok {
		var msg string
		if insns, msg = slowRequest(line, &ctx); msg != "" {
			m, _ := json.Marshal(fmt.Sprintf("bad input line %d: %s", lineNo, msg))
			dst = append(dst, `{"valid":false,"error":`...)
			dst = append(dst, m...)
			return append(dst, "}\n"...), true
		}
	}
	p, err := cbpf.Check(insns)
	if err != nil {
		m, _ := json.Marshal(err.Error())
		dst = append(dst, `{"valid":false,"error":`...)
		dst = append(dst, m...)
		return append(dst, "}\n"...), false
	}
	w := cbpf.WordsOf(ctx, bo)
	ret := p.Run(&w)
	dst = append(dst, `{"valid":true,"ret":`...)
	dst = strconv.AppendUint(dst, uint64(ret), 10)
	dst = append(dst, `,"allow":`...)
	dst = strconv.AppendBool(dst, ret != 0)
	return append(dst, "}\n"...), false
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
	var req jsonlInput
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
	limits := [4]uint64{0xffff, 0xff, 0xff, 0xffffffff}
	for i, r := range req.Prog {
		if len(r) != 4 {
			return nil, fmt.Sprintf("instruction %d has %d fields, want [code, jt, jf, k]", i, len(r))
		}
		var v [4]uint64
		for j, n := range r {
			x, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil || x > limits[j] {
				return nil, fmt.Sprintf("instruction %d: field %d is %s, want an integer from 0 to %d", i, j, n, limits[j])
			}
			v[j] = x
		}
		insns[i] = cbpf.Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return insns, ""
}

// fastRequest parses the usual form of a request line,
// {"prog": [[n, n, n, n], ...], "ctx": "<hex>"} in either key order with
// any JSON white space, without reflection. ok is false for anything
// else (escapes, duplicate or other keys, numbers out of range or not
// plain integers...): the caller then asks slowRequest, which decides.
func fastRequest(line []byte, ctx *[abi.CtxSize]byte) (insns []cbpf.Instruction, ok bool) {
	i := 0
	ws := func() {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
			i++
		}
	}
	lit := func(c byte) bool {
		ws()
		if i < len(line) && line[i] == c {
			i++
			return true
		}
		return false
	}
	str := func() ([]byte, bool) {
		if !lit('"') {
			return nil, false
		}
		start := i
		for i < len(line) && line[i] != '"' {
			if line[i] == '\\' || line[i] < 0x20 || line[i] >= 0x80 {
				return nil, false
			}
			i++
		}
		if i == len(line) {
			return nil, false
		}
		i++
		return line[start : i-1], true
	}
	number := func(limit uint64) (uint64, bool) {
		ws()
		start := i
		var v uint64
		for i < len(line) && line[i] >= '0' && line[i] <= '9' && i-start < 11 {
			v = v*10 + uint64(line[i]-'0')
			i++
		}
		n := i - start
		if n == 0 || n > 10 || n > 1 && line[start] == '0' || v > limit {
			return 0, false
		}
		return v, true
	}
	limits := [4]uint64{0xffff, 0xff, 0xff, 0xffffffff}
	var haveProg, haveCtx bool
	if !lit('{') {
		return nil, false
	}
	for {
		key, ok := str()
		if !ok || !lit(':') {
			return nil, false
		}
		switch {
		case string(key) == "prog" && !haveProg:
			haveProg = true
			if !lit('[') {
				return nil, false
			}
			insns = []cbpf.Instruction{}
			if !lit(']') {
				for {
					var f [4]uint64
					if !lit('[') {
						return nil, false
					}
					for j := range f {
						if j > 0 && !lit(',') {
							return nil, false
						}
						if f[j], ok = number(limits[j]); !ok {
							return nil, false
						}
					}
					if !lit(']') {
						return nil, false
					}
					insns = append(insns, cbpf.Instruction{Op: uint16(f[0]), Jt: uint8(f[1]), Jf: uint8(f[2]), K: uint32(f[3])})
					if lit(']') {
						break
					}
					if !lit(',') {
						return nil, false
					}
				}
			}
		case string(key) == "ctx" && !haveCtx:
			haveCtx = true
			h, ok := str()
			if !ok || len(h) != 2*abi.CtxSize {
				return nil, false
			}
			if _, err := hex.Decode(ctx[:], h); err != nil {
				return nil, false
			}
		default:
			return nil, false
		}
		if lit('}') {
			break
		}
		if !lit(',') {
			return nil, false
		}
	}
	ws()
	return insns, haveProg && haveCtx && i == len(line)
}
