package abi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// unavailable fails the test: it runs only when asked, and then the
// headers must be there.
func unavailable(t *testing.T, reason string) {
	t.Helper()
	t.Fatalf("%s (.ci/run installs apt, gcc and ca-certificates)", reason)
}

// kernelHeaders fetches Debian sid's linux-libc-dev (cached) and returns
// its include directory.
func kernelHeaders(t *testing.T) debian.Headers {
	t.Helper()
	vmtest.RequireExternal(t, "fetches linux-libc-dev from Debian and compiles C with gcc", "gcc", "apt-get", "dpkg-deb")
	dir, err := debian.DefaultCacheDir()
	if err != nil {
		unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := &debian.Fetcher{CacheDir: dir}
	h, err := f.LibcDev(ctx, debian.SuiteSid)
	if err != nil {
		unavailable(t, "cannot fetch linux-libc-dev from Debian sid: "+err.Error())
	}
	if _, err := os.Stat(filepath.Join(h.Include, "linux", "io_uring", "bpf_filter.h")); err != nil {
		t.Fatalf("linux-libc-dev %s has no linux/io_uring/bpf_filter.h (%v): the test needs 7.0 or later headers", h.Version, err)
	}
	return h
}

// headerNames reads the header's enum io_uring_op (in order, without
// IORING_OP_LAST) and its IOSQE_* flag macros: the names are taken from
// the header, not from package abi.
func headerNames(t *testing.T, include string) (ops, sqe, regs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(include, "linux", "io_uring.h"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	start := strings.Index(src, "enum io_uring_op {")
	if start < 0 {
		t.Fatal("linux/io_uring.h: no enum io_uring_op")
	}
	end := strings.Index(src[start:], "};")
	body := src[start : start+end]
	for _, m := range regexp.MustCompile(`(?m)^\s*(IORING_OP_[A-Z0-9_]+)\s*,`).FindAllStringSubmatch(body, -1) {
		if m[1] != "IORING_OP_LAST" {
			ops = append(ops, m[1])
		}
	}
	rstart := strings.Index(src, "enum io_uring_register_op {")
	if rstart < 0 {
		t.Fatal("linux/io_uring.h: no enum io_uring_register_op")
	}
	rbody := src[rstart : rstart+strings.Index(src[rstart:], "};")]
	for _, m := range regexp.MustCompile(`(?m)^\s*(IORING_(?:UN)?REGISTER_[A-Z0-9_]+)\s*=\s*\d+\s*,`).FindAllStringSubmatch(rbody, -1) {
		regs = append(regs, m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^#define\s+(IOSQE_[A-Z_]+)\s`).FindAllStringSubmatch(src, -1) {
		sqe = append(sqe, m[1])
	}
	if len(ops) == 0 || len(sqe) == 0 {
		t.Fatalf("linux/io_uring.h: found %d opcodes and %d IOSQE_ flags", len(ops), len(sqe))
	}
	return ops, sqe, regs
}

// cLayout compiles testdata/layout.c against the headers and returns its
// output as key -> value ("sizeof struct io_uring_bpf_ctx" -> 40).
func cLayout(t *testing.T, h debian.Headers) (vals map[string]uint64, ops, sqe, regs []string) {
	t.Helper()
	ops, sqe, regs = headerNames(t, h.Include)
	tmp := t.TempDir()
	var gen bytes.Buffer
	gen.WriteString("#define RF_OPS")
	for _, o := range ops {
		fmt.Fprintf(&gen, " X(%s)", o)
	}
	gen.WriteString("\n#define RF_REG_OPS")
	for _, r := range regs {
		fmt.Fprintf(&gen, " X(%s)", r)
	}
	gen.WriteString("\n#define RF_SQE_FLAGS")
	for _, s := range sqe {
		fmt.Fprintf(&gen, " X(%s)", s)
	}
	gen.WriteString("\n")
	if err := os.WriteFile(filepath.Join(tmp, "ops.h"), gen.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "layout")
	cc := exec.Command("gcc", "-std=gnu11", "-Wall", "-Werror", "-I", h.Include, "-I", tmp, "-o", bin, filepath.Join("testdata", "layout.c"))
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("gcc against linux-libc-dev %s: %v\n%s", h.Version, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the layout program: %v", err)
	}
	vals = map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("layout program: bad line %q", line)
		}
		v, err := strconv.ParseUint(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("layout program: bad line %q", line)
		}
		vals[line[:i]] = v
	}
	return vals, ops, sqe, regs
}

// TestKernelHeaderLayout checks every size, offset and constant of package
// abi against the kernel's own uapi headers (Debian sid's linux-libc-dev),
// compiled with gcc.
func TestKernelHeaderLayout(t *testing.T) {
	h := kernelHeaders(t)
	vals, ops, sqe, regs := cLayout(t, h)
	t.Logf("linux-libc-dev %s: %d opcodes, %d IOSQE_ flags", h.Version, len(ops), len(sqe))

	check := func(key string, want uint64) {
		t.Helper()
		got, ok := vals[key]
		if !ok {
			t.Errorf("the C program printed no %q", key)
			return
		}
		if got != want {
			t.Errorf("%s: kernel header says %d, package abi says %d", key, got, want)
		}
	}
	const (
		ctx = "struct io_uring_bpf_ctx"
		flt = "struct io_uring_bpf_filter"
		bpf = "struct io_uring_bpf"
		res = "struct io_uring_restriction"
		tsk = "struct io_uring_task_restriction"
	)
	for _, c := range []struct {
		key  string
		want uint64
	}{
		{"sizeof " + ctx, abi.CtxSize},
		{"offsetof " + ctx + ".user_data", abi.OffUserData},
		{"offsetof " + ctx + ".opcode", abi.OffOpcode},
		{"offsetof " + ctx + ".sqe_flags", abi.OffSQEFlags},
		{"offsetof " + ctx + ".pdu_size", abi.OffPDUSize},
		{"offsetof " + ctx + ".pad", abi.OffPad},
		{"fieldsize " + ctx + ".pad", abi.OffPDU - abi.OffPad},
		{"offsetof " + ctx + ".socket", abi.OffPDU},
		{"offsetof " + ctx + ".socket.family", abi.OffSocketFamily},
		{"offsetof " + ctx + ".socket.type", abi.OffSocketType},
		{"offsetof " + ctx + ".socket.protocol", abi.OffSocketProtocol},
		{"fieldsize " + ctx + ".socket", abi.PDUSizeSocket},
		{"offsetof " + ctx + ".open.flags", abi.OffOpenFlags},
		{"offsetof " + ctx + ".open.mode", abi.OffOpenMode},
		{"offsetof " + ctx + ".open.resolve", abi.OffOpenResolve},
		{"fieldsize " + ctx + ".open", abi.PDUSizeOpen},
		{"offsetof " + ctx + ".connect.family", abi.OffConnectFamily},
		{"offsetof " + ctx + ".connect.port", abi.OffConnectPort},
		{"fieldsize " + ctx + ".connect.port", 2},
		{"offsetof " + ctx + ".connect.pad", abi.OffConnectPort + 2},
		{"offsetof " + ctx + ".connect.v4_addr", abi.OffConnectAddr},
		{"offsetof " + ctx + ".connect.v6_addr", abi.OffConnectAddr},
		{"fieldsize " + ctx + ".connect.v6_addr", 16},
		{"fieldsize " + ctx + ".connect", abi.PDUSizeConnect},

		{"sizeof " + flt, abi.FilterStructSize},
		{"offsetof " + flt + ".opcode", abi.OffFilterOpcode},
		{"offsetof " + flt + ".flags", abi.OffFilterFlags},
		{"offsetof " + flt + ".filter_len", abi.OffFilterLen},
		{"offsetof " + flt + ".pdu_size", abi.OffFilterPDUSize},
		{"offsetof " + flt + ".resv", abi.OffFilterResv},
		{"offsetof " + flt + ".filter_ptr", abi.OffFilterPtr},
		{"offsetof " + flt + ".resv2", abi.OffFilterResv2},

		{"sizeof " + bpf, abi.BPFStructSize},
		{"offsetof " + bpf + ".cmd_type", abi.OffBPFCmdType},
		{"offsetof " + bpf + ".cmd_flags", abi.OffBPFCmdFlags},
		{"offsetof " + bpf + ".resv", abi.OffBPFResv},
		{"offsetof " + bpf + ".filter", abi.OffBPFFilter},

		{"sizeof " + res, abi.RestrictionSize},
		{"offsetof " + res + ".opcode", abi.OffRestrictionOp},
		{"offsetof " + res + ".register_op", abi.OffRestrictionVal},
		{"offsetof " + res + ".sqe_op", abi.OffRestrictionVal},
		{"offsetof " + res + ".sqe_flags", abi.OffRestrictionVal},
		{"offsetof " + res + ".resv", abi.OffRestrictionRsv},
		{"offsetof " + res + ".resv2", abi.OffRestrictionRs2},

		{"sizeof " + tsk, abi.TaskRestrictionSize},
		{"offsetof " + tsk + ".flags", abi.OffTaskResFlags},
		{"offsetof " + tsk + ".nr_res", abi.OffTaskResNr},
		{"offsetof " + tsk + ".resv", abi.OffTaskResResv},
		{"offsetof " + tsk + ".restrictions", abi.TaskRestrictionSize},

		{"const IORING_REGISTER_BPF_FILTER", abi.RegisterBPFFilter},
		{"const IORING_REGISTER_RESTRICTIONS", abi.RegisterRestrictions},
		{"const IORING_REGISTER_ENABLE_RINGS", abi.RegisterEnableRings},
		{"const IORING_REGISTER_PROBE", abi.RegisterProbe},
		{"const IORING_SETUP_R_DISABLED", abi.SetupRDisabled},
		{"const IORING_RESTRICTION_REGISTER_OP", abi.RestrictRegisterOp},
		{"const IORING_RESTRICTION_SQE_OP", abi.RestrictSQEOp},
		{"const IORING_RESTRICTION_SQE_FLAGS_ALLOWED", abi.RestrictSQEFlagsAllowed},
		{"const IORING_RESTRICTION_SQE_FLAGS_REQUIRED", abi.RestrictSQEFlagsRequired},
		{"const IO_URING_BPF_FILTER_DENY_REST", abi.FilterDenyRest},
		{"const IO_URING_BPF_FILTER_SZ_STRICT", abi.FilterSzStrict},
		{"const IO_URING_BPF_CMD_FILTER", abi.BPFCmdFilter},
		{"const IORING_OP_LAST", abi.OpLast},
	} {
		check(c.key, c.want)
	}

	// Every named context field: offset and size from the header.
	cname := map[string]string{"connect.addr": "connect.v6_addr"}
	for _, f := range abi.Fields() {
		n := f.Name
		if c, ok := cname[n]; ok {
			n = c
		}
		check("offsetof "+ctx+"."+n, uint64(f.Off))
		check("fieldsize "+ctx+"."+n, uint64(f.Size))
	}
	check("fieldsize "+ctx+".connect.v4_addr", 4)

	// Register opcodes: every name and number, and no more, no fewer.
	check("const IORING_REGISTER_LAST", abi.RegisterOpLast)
	check("const IORING_REGISTER_USE_REGISTERED_RING", abi.RegisterUseRegisteredRing)
	if len(regs) != abi.RegisterOpLast {
		t.Errorf("header has %d register opcodes, abi.RegisterOpLast is %d", len(regs), abi.RegisterOpLast)
	}
	for _, name := range regs {
		v, ok := vals["reg "+name]
		if !ok {
			t.Errorf("the C program printed no value for %s", name)
			continue
		}
		if got := abi.RegisterOp(v).KernelName(); got != name {
			t.Errorf("register opcode %d: header says %s, abi says %s", v, name, got)
		}
		if o, ok := abi.LookupRegisterOp(name); !ok || uint64(o) != v {
			t.Errorf("LookupRegisterOp(%q) = %d, %v; header says %d", name, o, ok, v)
		}
	}

	// Opcodes: every name and number, and no more, no fewer.
	table := abi.Opcodes()
	if len(ops) != len(table) || len(table) != abi.OpLast {
		t.Errorf("header has %d opcodes, abi.Opcodes() %d, abi.OpLast %d", len(ops), len(table), abi.OpLast)
	}
	for _, name := range ops {
		v, ok := vals["op "+name]
		if !ok {
			t.Errorf("the C program printed no value for %s", name)
			continue
		}
		if v >= uint64(len(table)) {
			t.Errorf("%s = %d: not in abi.Opcodes()", name, v)
			continue
		}
		if got := table[v].KernelName(); got != name || table[v].Op != abi.Opcode(v) {
			t.Errorf("opcode %d: header says %s, abi says %s (Op %d)", v, name, got, table[v].Op)
		}
		if info, ok := abi.LookupOpcode(name); !ok || uint64(info.Op) != v {
			t.Errorf("LookupOpcode(%q) = %d, %v; header says %d", name, info.Op, ok, v)
		}
	}

	// SQE flags: every IOSQE_ in the header is a known constant with the
	// same value, and the valid mask covers exactly them.
	var mask uint64
	for _, name := range sqe {
		v := vals["sqe "+name]
		mask |= v
		c, ok := abi.LookupConst(name, abi.GroupSQE)
		if !ok {
			t.Errorf("%s (= %#x) is not an abi constant", name, v)
		} else if c.Value != v {
			t.Errorf("%s: header says %#x, abi says %#x", name, v, c.Value)
		}
	}
	if mask != abi.IOSQEValidFlagsMask {
		t.Errorf("IOSQE_ flags in the header OR to %#x, abi.IOSQEValidFlagsMask is %#x", mask, abi.IOSQEValidFlagsMask)
	}
	for name, v := range map[string]uint64{
		"IOSQE_FIXED_FILE": abi.IOSQEFixedFile, "IOSQE_IO_DRAIN": abi.IOSQEIODrain,
		"IOSQE_IO_LINK": abi.IOSQEIOLink, "IOSQE_IO_HARDLINK": abi.IOSQEIOHardlink,
		"IOSQE_ASYNC": abi.IOSQEAsync, "IOSQE_BUFFER_SELECT": abi.IOSQEBufferSelect,
		"IOSQE_CQE_SKIP_SUCCESS": abi.IOSQECQESkipSuccess,
	} {
		check("sqe "+name, v)
	}
}

// TestFieldPlacement checks Field.Parts and Field.Words under both byte
// orders against a computation from the byte layout alone: fill the 40
// bytes with distinct values, load each aligned 32-bit word the way a
// machine of that order does, and compare what Parts/Words extract with
// the field's own bytes read in that order (for Network fields the bytes
// are in network order whatever the machine, and the extracted value is
// those bytes read in the machine's order: the raw bits, not the number).
func TestFieldPlacement(t *testing.T) {
	var ctx [abi.CtxSize]byte
	for i := range ctx {
		ctx[i] = byte(0xa0 + i) // distinct, nonzero bytes
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		load := func(word uint32) uint32 { return bo.Uint32(ctx[word : word+4]) }
		for _, f := range abi.Fields() {
			raw := ctx[f.Off : f.Off+f.Size]
			switch f.Size {
			case 1, 2, 4:
				var want uint32
				switch f.Size {
				case 1:
					want = uint32(raw[0])
				case 2:
					want = uint32(bo.Uint16(raw))
				case 4:
					want = bo.Uint32(raw)
				}
				p := f.Parts(bo)
				if p.Word%4 != 0 || p.Word > abi.CtxSize-4 {
					t.Errorf("%v %s: word %d is not an aligned word of the context", bo, f.Name, p.Word)
					continue
				}
				if got := load(p.Word) >> p.Shift & p.Mask; got != want {
					t.Errorf("%v %s: ld [%d] >> %d & %#x = %#x, the field's bytes hold %#x", bo, f.Name, p.Word, p.Shift, p.Mask, got, want)
				}
				if w := f.Words(bo); len(w) != 1 || w[0] != p.Word {
					t.Errorf("%v %s: Words = %v, Parts.Word = %d", bo, f.Name, w, p.Word)
				}
			case 8:
				v := bo.Uint64(raw)
				w := f.Words(bo)
				if len(w) != 2 {
					t.Errorf("%v %s: Words = %v, want lo and hi", bo, f.Name, w)
					continue
				}
				if lo, hi := load(w[0]), load(w[1]); lo != uint32(v) || hi != uint32(v>>32) {
					t.Errorf("%v %s: words %v load lo %#x hi %#x, the u64 is %#x", bo, f.Name, w, lo, hi, v)
				}
			case 16:
				w := f.Words(bo)
				if len(w) != 4 {
					t.Errorf("%v %s: Words = %v, want 4 words", bo, f.Name, w)
					continue
				}
				for i, off := range w {
					if got, want := load(off), bo.Uint32(raw[4*i:]); got != want {
						t.Errorf("%v %s: word %d at %d loads %#x, bytes %d..%d hold %#x", bo, f.Name, i, off, got, 4*i, 4*i+3, want)
					}
				}
			default:
				t.Errorf("%s: unexpected size %d", f.Name, f.Size)
			}
		}
	}
	// The u8 fields move: on a big-endian machine opcode (byte 8) is the
	// top byte of the word at 8, on a little-endian one the bottom byte.
	op, _ := abi.LookupField("opcode")
	if le, be := op.Parts(binary.LittleEndian).Shift, op.Parts(binary.BigEndian).Shift; le != 0 || be != 24 {
		t.Errorf("opcode shift: little-endian %d, big-endian %d; want 0 and 24", le, be)
	}
}

// TestKernelHeaderConsts checks the value of every named constant a policy
// author may write against C headers: IPPROTO_*, O_*, S_I* and RESOLVE_*
// against the kernel's uapi headers (linux/in.h, asm/fcntl.h,
// linux/stat.h, linux/openat2.h); AF_* and SOCK_*, which the uapi headers
// do not export, against the C library's <sys/socket.h>. The names come
// from package abi; a name the headers lack fails to compile.
func TestKernelHeaderConsts(t *testing.T) {
	h := kernelHeaders(t)
	kernelGroups := map[abi.Group]bool{abi.GroupProto: true, abi.GroupOpen: true, abi.GroupMode: true, abi.GroupResolve: true}
	libcGroups := map[abi.Group]bool{abi.GroupFamily: true, abi.GroupSockType: true}
	var kernelNames, libcNames []string
	want := map[string]uint64{}
	for _, c := range abi.Consts() {
		switch {
		case kernelGroups[c.Group]:
			kernelNames = append(kernelNames, c.Name)
		case libcGroups[c.Group]:
			libcNames = append(libcNames, c.Name)
		case c.Group == abi.GroupSQE:
			continue // checked by TestKernelHeaderLayout
		default:
			t.Errorf("constant %s: group %q is not checked against a header", c.Name, c.Group)
			continue
		}
		want[c.Name] = c.Value
	}
	// linux/stat.h defines S_I* only when no C library header came first.
	// The kernel calls O_ASYNC FASYNC; IPPROTO_ICMPV6 lives in in6.h.
	kernelSrc := "#include <linux/stat.h>\n#include <linux/in.h>\n#include <linux/in6.h>\n" +
		"#include <asm/fcntl.h>\n#include <linux/openat2.h>\n#include <stdio.h>\n" +
		"#ifndef O_ASYNC\n#define O_ASYNC FASYNC\n#endif\n"
	libcSrc := "#include <sys/socket.h>\n#include <stdio.h>\n"
	got := map[string]uint64{}
	for _, p := range []struct {
		name, src string
		names     []string
		include   []string
	}{
		{"kernel", kernelSrc, kernelNames, []string{"-I", h.Include, "-I", filepath.Join(h.Include, "x86_64-linux-gnu")}},
		{"libc", libcSrc, libcNames, nil},
	} {
		var b strings.Builder
		b.WriteString(p.src)
		b.WriteString("int main(void)\n{\n")
		for _, n := range p.names {
			fmt.Fprintf(&b, "\tprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n", n, n)
		}
		b.WriteString("\treturn 0;\n}\n")
		for name, v := range runC(t, p.name, b.String(), p.include) {
			got[name] = v
		}
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: no value printed", name)
		case g != w:
			t.Errorf("%s: header says %#o (%d), abi says %#o (%d)", name, g, g, w, w)
		}
	}
	t.Logf("%d kernel-header constants, %d C-library constants agree with package abi", len(kernelNames), len(libcNames))
}

// runC compiles and runs a C program whose lines are "NAME VALUE".
func runC(t *testing.T, name, src string, cflags []string) map[string]uint64 {
	t.Helper()
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append(append([]string{"-std=gnu11", "-Wall", "-Werror"}, cflags...), "-o", bin, c)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc (%s constants): %v\n%s", name, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the %s constants program: %v", name, err)
	}
	vals := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("%s constants program: bad line %q", name, line)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("%s constants program: bad line %q", name, line)
		}
		vals[f[0]] = v
	}
	return vals
}
