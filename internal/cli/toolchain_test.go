package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
)

// runTool runs a ringfence command in-process.
func runTool(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(&env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// inetProg is testdata/inet.s assembled by hand.
func inetProg() []cbpf.Instruction {
	return []cbpf.Instruction{
		cbpf.LoadAbs(16),
		cbpf.JumpIf(cbpf.JmpJEQ, 2, 0, 4),
		cbpf.LoadAbs(20),
		cbpf.ALUK(cbpf.AluAnd, 0xf),
		cbpf.JumpIf(cbpf.JmpJEQ, 1, 0, 1),
		cbpf.Ret(1),
		cbpf.Ret(0),
	}
}

func TestAsmCommand(t *testing.T) {
	want := inetProg()
	for _, f := range []string{"json", "c", "go", "raw", "asm"} {
		code, out, errs := runTool("", "asm", "testdata/inet.s", "--format", f)
		if code != exitOK {
			t.Fatalf("asm --format %s: exit %d: %s", f, code, errs)
		}
		fm, _ := asm.ParseFormat(f)
		got, err := asm.Unmarshal([]byte(out), fm, binary.LittleEndian)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("asm --format %s: read back %v (%v), want %v\n%s", f, got, err, want, out)
		}
	}
	// Canonical assembly keeps the file's view.
	if _, out, _ := runTool("", "asm", "testdata/inet.s", "--format", "asm"); !strings.HasPrefix(out, ".view socket\n\tld [socket.family]\n\tjne #AF_INET, L6\n") {
		t.Errorf("asm --format asm:\n%s", out)
	}
	// Default JSON, exactly.
	code, out, _ := runTool("", "asm", "testdata/inet.s")
	wantJSON := "[\n  [32, 0, 0, 16],\n  [21, 0, 4, 2],\n  [32, 0, 0, 20],\n  [84, 0, 0, 15],\n  [21, 0, 1, 1],\n  [6, 0, 0, 1],\n  [6, 0, 0, 0]\n]\n"
	if code != exitOK || out != wantJSON {
		t.Errorf("asm default output %q, want %q", out, wantJSON)
	}
	// Standard input, and -o.
	src, _ := os.ReadFile("testdata/inet.s")
	outFile := filepath.Join(t.TempDir(), "p.bin")
	if code, _, errs := runTool(string(src), "asm", "-", "--format", "raw", "-o", outFile); code != exitOK {
		t.Fatalf("asm - -o: exit %d: %s", code, errs)
	}
	raw, _ := os.ReadFile(outFile)
	if !bytes.Equal(raw, cbpf.Encode(want, binary.LittleEndian)) {
		t.Errorf("asm -o wrote %x", raw)
	}
	// .endian big makes raw output big-endian.
	code, out, _ = runTool(".endian big\nret #1\n", "asm", "-", "--format", "raw")
	if code != exitOK || out != string(cbpf.Encode([]cbpf.Instruction{cbpf.Ret(1)}, binary.BigEndian)) {
		t.Errorf("big-endian raw: %d %x", code, out)
	}
}

func TestAsmCommandErrors(t *testing.T) {
	cases := []struct {
		args   []string
		stdin  string
		code   int
		stderr []string
	}{
		{[]string{"asm", "testdata/bad.s"}, "", exitUsage, []string{
			"testdata/bad.s:1:6: unknown context word \"socket.famly\"; did you mean socket.family?\n" +
				"testdata/bad.s:2:7: unknown constant \"AF_INTE\"; did you mean AF_INET?\n"}},
		{[]string{"asm", "testdata/rejected.s"}, "", exitDenied, []string{
			"testdata/rejected.s:3:2: the kernel would reject instruction 1 (.insn 0x28, 0, 0, 0x10): "}},
		{[]string{"asm", "-"}, "; nothing\n", exitDenied, []string{"<stdin>: the kernel would reject this program: program rejected: "}},
		{[]string{"asm", "-"}, "ld #1\n", exitDenied, []string{"<stdin>:1:1: the kernel would reject instruction 0 (ld #1): "}},
		{[]string{"asm", "-"}, "ret #1\nret #2\nja +5\n", exitDenied, []string{"<stdin>:3:1: the kernel would reject instruction 2 (ja +5)"}},
		{[]string{"asm", "testdata/missing.s"}, "", exitUsage, []string{"no such file"}},
		{[]string{"asm", "testdata/inet.s", "--format", "yaml"}, "", exitUsage, []string{"unknown program format \"yaml\""}},
		{[]string{"asm"}, "", exitUsage, []string{"usage: ringfence asm"}},
		{[]string{"asm", "a.s", "b.s"}, "", exitUsage, []string{"usage: ringfence asm"}},
		{[]string{"asm", "--bogus", "a.s"}, "", exitUsage, []string{"flag provided but not defined: -bogus"}},
	}
	for _, c := range cases {
		code, _, errs := runTool(c.stdin, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errs)
		}
		for _, s := range c.stderr {
			if !strings.Contains(errs, s) {
				t.Errorf("%v: stderr lacks %q:\n%s", c.args, s, errs)
			}
		}
	}
	// --no-check outputs what the checker would refuse.
	code, out, _ := runTool("", "asm", "testdata/rejected.s", "--no-check", "--format", "json")
	if code != exitOK || !strings.Contains(out, "[40, 0, 0, 16]") {
		t.Errorf("--no-check: exit %d, %q", code, out)
	}
	// -h prints help and succeeds.
	if code, out, errs := runTool("", "asm", "-h"); code != exitOK || !strings.Contains(out, "--format FORMAT") || errs != "" {
		t.Errorf("asm -h: exit %d, stdout %q, stderr %q; want 0 and the help on stdout", code, out, errs)
	}
}

func TestDisasmCommand(t *testing.T) {
	prog := inetProg()
	wantText := `.view socket
	ld [socket.family]
	jne #AF_INET, L6
	ld [socket.type]
	and #0xf
	jne #SOCK_STREAM, L6
	ret #1
L6:
	ret #0
`
	for _, f := range asm.Formats() {
		data, _ := asm.Marshal(prog, f, nil)
		for _, args := range [][]string{
			{"disasm", "-", "--view", "socket"},
			{"disasm", "--format", string(f), "--view", "SOCKET", "-"},
		} {
			code, out, errs := runTool(string(data), args...)
			if code != exitOK || out != wantText {
				t.Errorf("disasm %v of %s: exit %d, stderr %q, output\n%s", args, f, code, errs, out)
			}
		}
	}
	// Without a view the union words are offsets; --numeric drops names.
	data, _ := asm.Marshal(prog, asm.FormatJSON, nil)
	code, out, _ := runTool(string(data), "disasm", "-")
	if code != exitOK || !strings.Contains(out, "\tld [16]\n\tjne #2, L6\n") {
		t.Errorf("disasm without view: %d\n%s", code, out)
	}
	// Big-endian raw input.
	be := cbpf.Encode([]cbpf.Instruction{cbpf.LoadAbs(0), cbpf.RetAcc()}, binary.BigEndian)
	code, out, _ = runTool(string(be), "disasm", "-", "--endian", "big")
	if code != exitOK || out != ".endian big\n\tld [user_data.hi]\n\tret a\n" {
		t.Errorf("big-endian disasm: %d %q", code, out)
	}
	// The output of disasm assembles back: a full CLI round trip.
	src, _ := os.ReadFile("testdata/inet.s")
	_, j1, _ := runTool(string(src), "asm", "-")
	_, text, _ := runTool(j1, "disasm", "-")
	_, j2, _ := runTool(text, "asm", "-")
	if j1 != j2 {
		t.Errorf("asm | disasm | asm changed the program:\n%s\n%s", j1, j2)
	}
	// --check appends the verdict; the listing still assembles to the input.
	code, out, _ = runTool("[[6, 0, 0, 1]]", "disasm", "-", "--check")
	if code != exitOK || out != "\tret #1\n; checker: accepted\n" {
		t.Errorf("disasm --check: %d %q", code, out)
	}
	code, out, _ = runTool("[[40, 0, 0, 16], [6, 0, 0, 1]]", "disasm", "-", "--check")
	if code != exitDenied || !strings.HasPrefix(out, "\t.insn 0x28, 0, 0, 0x10\n\tret #1\n; checker: <stdin>: the kernel would reject instruction 0 (.insn 0x28, 0, 0, 0x10): ") {
		t.Errorf("disasm --check of a rejected program: %d %q", code, out)
	}
	if _, j, _ := runTool(out, "asm", "-", "--no-check"); j != "[\n  [40, 0, 0, 16],\n  [6, 0, 0, 1]\n]\n" {
		t.Errorf("disasm --check output does not assemble back: %q", j)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		err   string
	}{
		{"[[1, 2]]", []string{"disasm", "-"}, "instruction 0: has 2 fields, want [code, jt, jf, k] (read as json)"},
		{"[[6, 0, 0, 1]]", []string{"disasm", "-", "--view", "sock"}, "unknown view \"sock\""},
		{"\x06\x00\x00", []string{"disasm", "-"}, "not a multiple of 8"},
		{"", []string{"disasm", "-"}, "empty input"},
		{"ret #1", []string{"disasm", "-", "--endian", "middle"}, "unknown byte order"},
	} {
		code, _, errs := runTool(c.stdin, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.err) {
			t.Errorf("%v on %q: exit %d, stderr %q, want %q", c.args, c.stdin, code, errs, c.err)
		}
	}
}

func TestEmuCommand(t *testing.T) {
	cases := []struct {
		ctx    string
		code   int
		stdout string
	}{
		{"opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM", exitOK, "allow (returned 1)\n"},
		{"opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM|SOCK_NONBLOCK", exitOK, "allow (returned 1)\n"},
		{"opcode=SOCKET socket.family=AF_INET socket.type=SOCK_DGRAM", exitDenied, "deny (returned 0)\n"},
		{"opcode=45 socket.family=AF_INET6 socket.type=1", exitDenied, "deny (returned 0)\n"},
		{"socket.family=2 socket.type=1 user_data=7", exitOK, "allow (returned 1)\n"},
		{"", exitDenied, "deny (returned 0)\n"},
		// Raw context: family 2 at 16, type 1 at 20.
		{strings.Repeat("00", 16) + "02000000" + "01000000" + strings.Repeat("00", 16), exitOK, "allow (returned 1)\n"},
	}
	for _, c := range cases {
		code, out, errs := runTool("", "emu", "testdata/inet.s", "--ctx", c.ctx)
		if code != c.code || out != c.stdout {
			t.Errorf("emu --ctx %q: exit %d, %q (stderr %q), want %d %q", c.ctx, code, out, errs, c.code, c.stdout)
		}
	}
	// --trace prints the path, disassembled, with source lines.
	code, out, _ := runTool("", "emu", "testdata/inet.s", "--trace", "--ctx", "opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM")
	wantTrace := []string{"context: user_data=0 opcode=SOCKET sqe_flags=0x0 pdu_size=12 socket.family=AF_INET socket.type=0x1 socket.protocol=IPPROTO_IP\n", "0  ld [socket.family]", "(line 3)", "1  jne #AF_INET, L6", "4  jne #SOCK_STREAM, L6", "5  ret #1", "allow (returned 1)"}
	for _, w := range wantTrace {
		if !strings.Contains(out, w) {
			t.Errorf("trace lacks %q:\n%s", w, out)
		}
	}
	if n := strings.Count(out, "\n"); code != exitOK || n != 8 {
		t.Errorf("trace: exit %d, %d lines:\n%s", code, n, out)
	}
	// Programs in other formats, and the view taken from the opcode for
	// the trace.
	js, _ := asm.Marshal(inetProg(), asm.FormatJSON, nil)
	code, out, _ = runTool(string(js), "emu", "-", "--trace", "--ctx", "opcode=SOCKET socket.family=AF_UNIX")
	if code != exitDenied || !strings.Contains(out, "jne #AF_INET, L6") || !strings.HasSuffix(out, "deny (returned 0)\n") {
		t.Errorf("emu of JSON: %d\n%s", code, out)
	}
	// A rejected program is exit 1 with the reason.
	code, _, errs := runTool("", "emu", "testdata/rejected.s", "--ctx", "opcode=SOCKET")
	if code != exitDenied || !strings.Contains(errs, "testdata/rejected.s:3:2: the kernel would reject instruction 1") {
		t.Errorf("emu of rejected program: %d %q", code, errs)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"emu", "testdata/inet.s", "--ctx", "opcode=SOCKT"}, `unknown opcode "SOCKT"; did you mean SOCKET?`},
		{[]string{"emu", "testdata/inet.s", "--ctx", "socket.famly=2"}, `unknown field "socket.famly"; did you mean socket.family?`},
		{[]string{"emu", "testdata/inet.s", "--ctx", "socket.family=AF_INTE"}, `socket.family=AF_INTE: unknown address family "AF_INTE"; did you mean AF_INET?`},
		{[]string{"emu", "testdata/inet.s", "--ctx", "socket.family=O_CREAT"}, "O_CREAT is an open flag, not an address family"},
		{[]string{"emu", "testdata/inet.s", "--ctx", "opcode=OPENAT socket.family=2"}, "socket.family exists only for SOCKET, not OPENAT"},
		{[]string{"emu", "testdata/inet.s", "--ctx", "socket.family=2 open.flags=1"}, "socket.family and open.flags belong to different opcodes' data"},
		{[]string{"emu", "testdata/inet.s", "--kernel", "7.0", "--ctx", "opcode=CONNECT connect.port=80"}, "CONNECT passes no data to filters on Linux 7.0 (only since 7.2)"},
		{[]string{"emu", "testdata/inet.s", "--ctx", "sqe_flags=0x100"}, "sqe_flags=0x100: 0x100 is out of range (8 bits, at most 255)"},
		{[]string{"emu", "testdata/inet.s", "--ctx", "user_data"}, `"user_data": want key=value`},
		{[]string{"emu", "testdata/inet.s", "--ctx", "user_data=1 user_data=2"}, "user_data given twice"},
		{[]string{"emu", "testdata/inet.s", "--ctx", "connect.addr=localhost"}, `invalid address "localhost": want an IPv4 or IPv6 address`},
		{[]string{"emu", "testdata/inet.s", "--ctx", strings.Repeat("zz", 40)}, "80 characters but not hex digits"},
		{[]string{"emu", "testdata/inet.s", "--ctx", strings.Repeat("0", 81)}, "81 hex digits; raw context is 80 (40 bytes)"},
		{[]string{"emu", "testdata/bad.s", "--ctx", "opcode=SOCKET"}, "testdata/bad.s:1:6: unknown context word"},
		{[]string{"emu", "--ctx", "opcode=SOCKET"}, "usage: ringfence emu"},
		{[]string{"emu", "--jsonl", "testdata/inet.s"}, "--jsonl takes its programs"},
	} {
		code, _, errs := runTool("", c.args...)
		if code != exitUsage || !strings.Contains(errs, c.err) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errs, c.err)
		}
	}
}

// TestParseCtx checks the context built from field assignments byte by
// byte.
func TestParseCtx(t *testing.T) {
	le := binary.LittleEndian
	k73 := abi.Version{Major: 7, Minor: 3}
	build := func(f func(c *abi.Ctx)) [abi.CtxSize]byte {
		var c abi.Ctx
		f(&c)
		return c.Encode(le)
	}
	cases := []struct {
		ctx  string
		want [abi.CtxSize]byte
	}{
		{"opcode=SOCKET socket.family=AF_INET socket.type=SOCK_STREAM user_data=7", build(func(c *abi.Ctx) {
			c.Opcode, c.UserData = 45, 7
			c.SetSocket(abi.SocketData{Family: 2, Type: 1}, le)
		})},
		{"opcode=OPENAT open.flags=O_CREAT|O_RDWR open.mode=0o644", build(func(c *abi.Ctx) {
			c.Opcode = 18
			c.SetOpen(abi.OpenData{Flags: 0o102, Mode: 0o644}, le)
		})},
		{"opcode=OPENAT2 open.resolve=RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS", build(func(c *abi.Ctx) {
			c.Opcode = 28
			c.SetOpen(abi.OpenData{Resolve: 0x0c}, le)
		})},
		{"opcode=CONNECT connect.family=AF_INET connect.addr=127.0.0.1 connect.port=80", build(func(c *abi.Ctx) {
			c.Opcode = 16
			c.SetConnect(abi.ConnectData{Family: 2, Port: 80, Addr: [16]byte{127, 0, 0, 1}}, le)
		})},
		// An address sets the family too; short names resolve in the
		// data the other fields chose.
		{"connect.addr=::1", build(func(c *abi.Ctx) {
			c.SetConnect(abi.ConnectData{Family: 10, Addr: [16]byte{15: 1}}, le)
		})},
		{"op=OPENAT flags=O_CREAT|O_RDWR mode=0o644", build(func(c *abi.Ctx) {
			c.Opcode = 18
			c.SetOpen(abi.OpenData{Flags: 0o102, Mode: 0o644}, le)
		})},
		{"opcode=OPENAT", build(func(c *abi.Ctx) { c.Opcode = 18; c.PDUSize = 24 })},
		{"opcode=READ sqe_flags=IOSQE_ASYNC|IOSQE_IO_DRAIN", build(func(c *abi.Ctx) { c.Opcode = 22; c.SQEFlags = 0x12 })},
		{"opcode=SOCKET pdu_size=0", build(func(c *abi.Ctx) { c.Opcode = 45 })},
		{"user_data=0xffffffffffffffff", build(func(c *abi.Ctx) { c.UserData = 1<<64 - 1 })},
	}
	for _, c := range cases {
		got, _, err := parseCtx(c.ctx, le, k73)
		if err != nil {
			t.Errorf("%q: %v", c.ctx, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q:\n got %x\nwant %x", c.ctx, got, c.want)
		}
	}
	// CONNECT on 7.0 carries no data: pdu_size stays 0.
	got, _, err := parseCtx("opcode=CONNECT", le, abi.Version{Major: 7, Minor: 0})
	if err != nil || got[abi.OffPDUSize] != 0 {
		t.Errorf("CONNECT on 7.0: pdu_size %d, %v", got[abi.OffPDUSize], err)
	}
}

func TestEmuJSONL(t *testing.T) {
	ctxHex := func(c abi.Ctx) string { b := c.Encode(binary.LittleEndian); return fmt.Sprintf("%x", b[:]) }
	var inet abi.Ctx
	inet.SetSocket(abi.SocketData{Family: 2, Type: 1}, binary.LittleEndian)
	var unix abi.Ctx
	unix.SetSocket(abi.SocketData{Family: 1, Type: 1}, binary.LittleEndian)
	prog, _ := asm.Marshal(inetProg(), asm.FormatJSON, nil)
	progLine := strings.Join(strings.Fields(string(prog)), "")
	input := strings.Join([]string{
		`{"prog": ` + progLine + `, "ctx": "` + ctxHex(inet) + `"}`,
		`{"ctx": "` + ctxHex(unix) + `", "prog": ` + progLine + `}`,
		`{"prog": [[6, 0, 0, 4294967295]], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [[40, 0, 0, 16], [6, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [[6, 0, 0]], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [[6, 0, 0, 1]], "ctx": "00"}`,
		`not json`,
		``,
		`{"prog": [[6, 0, 0, 1]]}`,
		`{"prog": [[6, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `", "extra": 1}`,
		`{"prog": [[65536, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [[6, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `"} {}`,
		`{"PROG": [[6, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `"}`,
		`{"prog": [[6, 0, 0, 1]], "ctx": "` + strings.Repeat("0", 80) + `", "ctx": "` + strings.Repeat("1", 80) + `"}`,
		`{"prog": [[6, 0, 0, 7]], "ctx": "` + strings.Repeat("0", 80) + `"}`, // no final newline
	}, "\n")
	code, out, errs := runTool(input, "emu", "--jsonl")
	if code != exitUsage {
		t.Errorf("exit %d, want %d (malformed lines present); stderr %q", code, exitUsage, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		`{"valid":true,"ret":1,"allow":true}`,
		`{"valid":true,"ret":0,"allow":false}`,
		`{"valid":true,"ret":4294967295,"allow":true}`,
		`{"valid":false,"error":"instruction 0`,
		`{"valid":false,"error":"program rejected: `,
		`{"valid":false,"error":"bad input line 6: instruction 0 has 3 fields, want [code, jt, jf, k]"}`,
		`{"valid":false,"error":"bad input line 7: ctx has 2 hex digits, want 80"}`,
		`{"valid":false,"error":"bad input line 8: invalid character`,
		`{"valid":false,"error":"bad input line 9: empty line"}`,
		`{"valid":false,"error":"bad input line 10: missing \"ctx\""}`,
		`{"valid":false,"error":"bad input line 11: unknown key \"extra\" (the keys are \"prog\" and \"ctx\", in lower case)"}`,
		`{"valid":false,"error":"bad input line 12: instruction 0: field 0 is 65536, want an integer from 0 to 65535"}`,
		`{"valid":false,"error":"bad input line 13: more than one JSON value on the line"}`,
		`{"valid":false,"error":"bad input line 14: unknown key \"PROG\"`,
		`{"valid":false,"error":"bad input line 15: duplicate key \"ctx\""}`,
		`{"valid":true,"ret":7,"allow":true}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d output lines for %d input lines:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %s\nwant prefix %s", i+1, lines[i], w)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &v); err != nil {
			t.Errorf("line %d is not JSON: %v", i+1, err)
		}
		if _, hasRet := v["ret"]; hasRet != (v["valid"] == true) {
			t.Errorf("line %d: ret present %v but valid %v", i+1, hasRet, v["valid"])
		}
		if _, hasErr := v["error"]; hasErr == (v["valid"] == true) {
			t.Errorf("line %d: error present %v but valid %v", i+1, hasErr, v["valid"])
		}
	}
	// All lines well-formed: exit 0, even with invalid programs.
	code, out, _ = runTool(`{"prog": [], "ctx": "`+strings.Repeat("0", 80)+`"}`+"\n", "emu", "--jsonl")
	if code != exitOK || !strings.HasPrefix(out, `{"valid":false,"error":"program rejected`) {
		t.Errorf("valid input: exit %d %q", code, out)
	}
	// Big-endian words: the word at 16 read big-endian.
	line := `{"prog": [[32, 0, 0, 16], [22, 0, 0, 0]], "ctx": "` + strings.Repeat("00", 16) + "00000102" + strings.Repeat("00", 20) + `"}`
	_, out, _ = runTool(line, "emu", "--jsonl", "--endian", "big")
	if out != `{"valid":true,"ret":258,"allow":true}`+"\n" {
		t.Errorf("big-endian: %q", out)
	}
	_, out, _ = runTool(line, "emu", "--jsonl")
	if out != `{"valid":true,"ret":33619968,"allow":true}`+"\n" {
		t.Errorf("little-endian: %q", out)
	}
}

// BenchmarkEmuJSONL measures the batch mode on a 7-instruction program.
func BenchmarkEmuJSONL(b *testing.B) {
	prog, _ := asm.Marshal(inetProg(), asm.FormatJSON, nil)
	var inet abi.Ctx
	inet.SetSocket(abi.SocketData{Family: 2, Type: 1}, binary.LittleEndian)
	c := inet.Encode(binary.LittleEndian)
	line := `{"prog": ` + strings.Join(strings.Fields(string(prog)), "") + `, "ctx": "` + fmt.Sprintf("%x", c[:]) + `"}` + "\n"
	input := strings.Repeat(line, 1000)
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		var out bytes.Buffer
		if code := run(&env{stdin: strings.NewReader(input), stdout: &out, stderr: &out}, []string{"emu", "--jsonl"}); code != exitOK {
			b.Fatal(out.String())
		}
	}
}
