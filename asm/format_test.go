package asm

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/cbpf"
)

// TestReadFormats reads hand-written programs in every format, checking
// the detected format and the instructions.
func TestReadFormats(t *testing.T) {
	want := []cbpf.Instruction{cbpf.LoadAbs(16), cbpf.JumpIf(cbpf.JmpJEQ, 2, 0, 1), cbpf.Ret(1), cbpf.Ret(0)}
	cases := []struct {
		name   string
		data   string
		format Format
	}{
		{"json", "[[32,0,0,16],[21,0,1,2],[6,0,0,1],[6,0,0,0]]", FormatJSON},
		{"json spaced", " [\n [ 32, 0, 0, 16 ],\n\t[21, 0, 1, 2], [6, 0, 0, 1], [6, 0, 0, 0]\n]\n", FormatJSON},
		{"c with preamble", `#include <linux/filter.h>
/* an AF_INET filter */
static struct sock_filter prog[4] = {
	{ 0x20, 0, 0, 0x00000010 }, // ld [16]
	{ 0x15, 0, 1, 2U },
	{ 0x06, 0, 0, 1 },
	{ 6, 0, 0, 0 },
};
`, FormatC},
		{"c macros", `#include <linux/filter.h>
#include <linux/io_uring/bpf_filter.h>

struct sock_filter filter[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct io_uring_bpf_ctx, socket.family)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 1),
	BPF_STMT(BPF_RET + BPF_K, (0)),
};
`, FormatC},
		{"c designated", "struct sock_filter f[] = {{.code = 0x20, .k = 16}, {.code = 0x15, .jf = 1, .k = 2}, {.code = 6, .k = 1}, {.code = 6}};", FormatC},
		{"c bare braces", "{0x20, 0, 0, 16}, {0x15, 0, 1, 2}, {6, 0, 0, 1}, {6, 0, 0, 0}", FormatC},
		{"go keyed", "var prog = []cbpf.Instruction{\n\t{Op: 0x20, K: 16},\n\t{Op: 0x15, Jf: 1, K: 2},\n\tcbpf.Instruction{Op: 6, K: 1},\n\t{Op: 6},\n}\n", FormatGo},
		{"go literal", "[]cbpf.Instruction{{Op: 0x20, Jt: 0, Jf: 0, K: 0x10}, {0x15, 0, 1, 2}, {Op: 6, K: 1}, {Op: 6}}", FormatGo},
		{"asm with comment", "; filter\n\tld [16]\n\tjne #2, +1\n\tret #1\n\tret #0\n", FormatAsm},
		{"asm with label", "start: ld [socket.family]\n\tjeq #AF_INET, a, d\na: ret #1\nd: ret #0\n", FormatAsm},
		{"asm directive", ".view socket\nld [socket.family]\njne #AF_INET, +1\nret #1\nret #0\n", FormatAsm},
		{"raw", string(cbpf.Encode(want, binary.LittleEndian)), FormatRaw},
	}
	for _, c := range cases {
		if got := Detect([]byte(c.data)); got != c.format {
			t.Errorf("%s: detected %s, want %s", c.name, got, c.format)
		}
		got, err := ParseAny([]byte(c.data))
		if c.name == "c bare braces" {
			// Only a single bare element is read without the array's braces.
			if err == nil {
				t.Errorf("%s: read %v, want an error", c.name, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v", c.name, got, err)
		}
	}
}

func TestReadFormatErrors(t *testing.T) {
	cases := []struct {
		data   string
		format Format
		err    string
	}{
		{"[[1, 2, 3]]", FormatJSON, "instruction 0: has 3 fields, want [code, jt, jf, k]"},
		{"[[1, 2, 3, -4]]", FormatJSON, "instruction 0: k -4 is not an integer from 0 to 4294967295"},
		{"[[1, 256, 3, 4]]", FormatJSON, "instruction 0: jt 256 is not an integer from 0 to 255"},
		{"[[1, 2, 3, 4.5]]", FormatJSON, "k 4.5 is not an integer"},
		{"[[1, 2, 3, 4]] x", FormatJSON, "1:16: unexpected data after the JSON program"},
		{"[[1, 2,\n 3, 4]", FormatJSON, "2:7: bad JSON: the program ends early"},
		{"{\"a\": 1}", FormatJSON, "1:1: a JSON program is an array of [code, jt, jf, k] arrays of numbers"},
		{"struct sock_filter f[] = {{1, 2, 3}};", FormatC, "1:27: an instruction has four fields {code, jt, jf, k}; found 3"},
		{"struct sock_filter f[] = {{1, 2, 3, 4, 5}};", FormatC, "1:40: an instruction has four fields {code, jt, jf, k}; found a fifth"},
		{"struct sock_filter f[] = {\n  {0x10000, 0, 0, 0}};", FormatC, "2:4: code 0x10000 does not fit (at most 0xffff)"},
		{"struct sock_filter f[] = {\n  BPF_SMT(BPF_RET|BPF_K, 0)};", FormatC, "2:3: expected '{' starting instruction 0, found \"BPF_SMT\" (write {code, jt, jf, k}, BPF_STMT(code, k) or BPF_JUMP(code, k, jt, jf))"},
		{"struct sock_filter f[] = {{1, 2, 3, 4}} extra", FormatC, "1:41: unexpected \"extra\" after the program"},
		{"struct sock_filter f[] = {{1, 2, 3, 4} {5, 6, 7, 8}};", FormatC, "1:40: expected ',' or '}' after instruction 0, found \"{\""},
		{"[]cbpf.Instruction{{Op: 1, Foo: 2}}", FormatGo, "1:28: expected a field name (Op, Jt, Jf, K or .code, .jt, .jf, .k), found \"Foo\""},
		{"[]cbpf.Instruction{{Op 1}}", FormatGo, "1:24: expected ':' or '=' after Op, found \"1\""},
		{"[]cbpf.Instruction{{Op: x}}", FormatGo, "1:25: expected a number, found \"x\""},
		{"/* unterminated", FormatC, "1:1: unterminated /* comment"},
		{"struct sock_filter f[] = {BPF_STMT(BPF_LD|BPF_W+BPF_ABS, 0)};", FormatC, "1:48: mixing '|' and '+' needs parentheses"},
		{"struct sock_filter f[] = {BPF_STMT(BPF_RET, 0, 1)};", FormatC, "1:46: BPF_STMT takes 2 arguments; expected ')', found \",\""},
		{"struct sock_filter f[] = {BPF_JUMP(BPF_JMP, 0, 1)};", FormatC, "1:49: BPF_JUMP takes 4 arguments; expected ',', found \")\""},
		{"struct sock_filter f[] = {BPF_JUMP(BPF_JMP, 0, 256, 0)};", FormatC, "1:48: jt 0x100 does not fit (at most 0xff)"},
		{"struct sock_filter f[] = {BPF_STMT(BPF_LDD, 0)};", FormatC, "1:36: expected a number, a BPF_* name or offsetof(struct io_uring_bpf_ctx, field), found \"BPF_LDD\""},
		{"struct sock_filter f[] = {BPF_STMT(0, offsetof(struct io_uring_bpf_ctx, socket.famly))};", FormatC, "1:39: struct io_uring_bpf_ctx has no field \"socket.famly\""},
		{"struct sock_filter f[] = {BPF_STMT(0, offsetof(struct sk_buff, len))};", FormatC, "1:39: offsetof reads offsetof(struct io_uring_bpf_ctx, field) only"},
		{"struct sock_filter f[] = {BPF_STMT(0, (1 | 2)};", FormatC, "1:46: BPF_STMT takes 2 arguments; expected ')', found \"}\""},
		{"no braces here", FormatC, "no '{' found"},
		{"\x06\x00\x00", FormatRaw, "not a multiple of 8"},
	}
	for _, c := range cases {
		_, err := Unmarshal([]byte(c.data), c.format, nil)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q as %s: error %v, want %q", c.data, c.format, err, c.err)
		}
	}
	if got, err := ParseAny([]byte("[]cbpf.Instruction{{}, {Op: 6}}")); err != nil || !slices.Equal(got, []cbpf.Instruction{{}, cbpf.Ret(0)}) {
		t.Errorf("{} is the zero instruction: %v %v", got, err)
	}
	if _, err := ParseAny(nil); err == nil || err.Error() != "empty input: no program" {
		t.Errorf("ParseAny(nil): %v", err)
	}
	if _, err := ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml) succeeded")
	}
	if _, err := Marshal(nil, "yaml", nil); err == nil {
		t.Error("Marshal(yaml) succeeded")
	}
}
