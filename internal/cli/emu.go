package cli

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/emubatch"
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
					malformed, err := emubatch.Run(e.stdin, e.stdout, bo)
					if err != nil {
						return err
					}
					if malformed {
						return exitStatus(exitUsage)
					}
					return nil
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
