package seccomptest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccompprofile"
)

const eacces = -int32(unix.EACCES)

// needFilters returns the running kernel's version, skipping on the host
// and on kernels without io_uring filters (6.19 in the matrix), failing
// on a 7.x kernel in the VM where they are missing.
func needFilters(t *testing.T) abi.Version {
	t.Helper()
	vmtest.Require(t)
	v, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.Supported(); err != nil {
		if !v.Less(abi.FilterSince()) {
			t.Fatalf("Linux %v should have io_uring filters: %v", v, err)
		}
		t.Skipf("Linux %v has no io_uring filters: %v", v, err)
	}
	return v
}

// do submits s alone on r and returns its result, closing a descriptor a
// SOCKET or OPENAT request created.
func do(t *testing.T, r *kernel.Ring, s kernel.SQE) int32 {
	t.Helper()
	c, err := r.Do(s)
	if err != nil {
		t.Fatalf("%v: %v", s.Opcode, err)
	}
	if c.Res >= 0 && (s.Opcode == abi.OpSocket || s.Opcode == abi.OpOpenat) {
		unix.Close(int(c.Res))
	}
	return c.Res
}

// request is one request of the test: by meaning (kernel.Request, whose
// context ringfence predicts) or, for opcodes without data, a raw SQE on
// descriptor -1.
type request struct {
	name string
	req  kernel.Request
}

func requests(t *testing.T) []request {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out []request
	for fam := uint32(0); fam <= 45; fam++ {
		for _, typ := range []uint32{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET | unix.SOCK_NONBLOCK, unix.SOCK_RAW} {
			for _, proto := range []uint32{0, 9} {
				out = append(out, request{fmt.Sprintf("socket(%d, %#x, %d)", fam, typ, proto),
					kernel.Request{Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: fam, Type: typ, Protocol: proto}}})
			}
		}
	}
	for _, flags := range []uint64{unix.O_RDONLY, unix.O_WRONLY | unix.O_APPEND, unix.O_RDWR | unix.O_CREAT} {
		out = append(out, request{fmt.Sprintf("openat(%#o)", flags),
			kernel.Request{Op: abi.OpOpenat, Open: kernel.OpenArgs{Dir: unix.AT_FDCWD, Path: file, Flags: flags, Mode: 0o600}}})
	}
	out = append(out, request{"nop", kernel.Request{Op: abi.OpNop}})
	return out
}

// rawOps are opcodes submitted as an SQE on descriptor -1 with no buffer:
// when allowed they fail in preparation or with EBADF, never block.
// (URING_CMD128 is not among them: on a ring without 128-byte SQEs it
// fails before any filter runs: a ring whose filter denies it did not
// answer EACCES, on 7.1.13 and 7.3.4.)
func rawOps() []abi.Opcode {
	return []abi.Opcode{abi.OpRead, abi.OpWrite, abi.OpReadv, abi.OpWritev, abi.OpFsync, abi.OpClose,
		abi.OpSend, abi.OpRecv, abi.OpShutdown, abi.OpListen, abi.OpUringCmd}
}

// TestFromSeccompKernel: the policy derived from each runtime's default
// seccomp profile, registered on a ring, makes the kernel deny exactly the
// requests the policy denies (judged on the context ringfence predicts),
// and those are the profile's denials: AF_VSOCK and AF_ALG sockets for
// Docker, AF_VSOCK and netlink audit sockets for Podman, URING_CMD for
// both; ordinary sockets, opens and I/O run.
func TestFromSeccompKernel(t *testing.T) {
	k := needFilters(t)
	for _, tc := range []struct {
		file    string
		opts    seccompprofile.Options
		denied  []string // requests the profile denies
		allowed []string
	}{
		{"../../testdata/seccomp/moby-default.json", seccompprofile.Options{Runtime: seccompprofile.Docker},
			[]string{"socket(40, 0x1, 0)", "socket(40, 0x2, 0)", "socket(38, 0x805, 0)", "socket(38, 0x1, 9)"},
			[]string{"socket(2, 0x1, 0)", "socket(10, 0x2, 0)", "socket(1, 0x805, 0)", "socket(16, 0x3, 9)", "socket(39, 0x1, 0)", "openat(0)", "openat(0102)", "nop"}},
		{"../../testdata/seccomp/podman-seccomp.json", seccompprofile.Options{Runtime: seccompprofile.Podman},
			[]string{"socket(40, 0x1, 0)", "socket(16, 0x3, 9)", "socket(16, 0x2, 9)"},
			[]string{"socket(2, 0x1, 0)", "socket(10, 0x2, 0)", "socket(38, 0x805, 0)", "socket(16, 0x3, 0)", "openat(02001)", "nop"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			prof, err := seccompprofile.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			d, err := prof.Derive(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := ringfence.Compile(d.Policy, k)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := kernel.NewRing(kernel.Params{})
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			fenced, err := kernel.NewRing(kernel.Params{})
			if err != nil {
				t.Fatal(err)
			}
			defer fenced.Close()
			if err := ringfence.ApplyToRing(fenced.FD(), plan); err != nil {
				t.Fatal(err)
			}
			verdict := map[string]bool{}
			compared := 0
			for _, rq := range requests(t) {
				if do(t, plain, rq.req.SQE()) == eacces {
					continue // fails so without filters: nothing to learn
				}
				ctx, ok := rq.req.Ctx(k)
				if !ok {
					continue // preparation fails before any filter
				}
				want := d.Policy.Decide(ringfence.RequestFromCtx(ctx, binary.NativeEndian)).Allow
				got := do(t, fenced, rq.req.SQE()) != eacces
				if got != want {
					t.Errorf("%s: kernel allowed=%v, derived policy allows=%v", rq.name, got, want)
				}
				verdict[rq.name] = got
				compared++
			}
			for _, op := range rawOps() {
				s := kernel.SQE{Opcode: op, FD: -1}
				if do(t, plain, s) == eacces {
					continue
				}
				want := d.Policy.Decide(policy.Request{Op: op}).Allow
				got := do(t, fenced, s) != eacces
				if got != want {
					t.Errorf("%v: kernel allowed=%v, derived policy allows=%v", op, got, want)
				}
				verdict[op.String()] = got
				compared++
			}
			for _, name := range tc.denied {
				if v, ok := verdict[name]; !ok || v {
					t.Errorf("%s: allowed=%v (compared: %v), want denied as the profile denies it", name, v, ok)
				}
			}
			for _, name := range append(tc.allowed, "READ", "WRITE", "CLOSE", "SEND", "RECV") {
				if v, ok := verdict[name]; !ok || !v {
					t.Errorf("%s: allowed=%v (compared: %v), want allowed as the profile allows it", name, v, ok)
				}
			}
			if v, ok := verdict["URING_CMD"]; !ok || v {
				t.Errorf("URING_CMD: allowed=%v (compared: %v); the derived policy denies driver commands", v, ok)
			}
			t.Logf("Linux %v: %d requests compared, %d registrations", k, compared, len(plan.Registrations))
		})
	}
}
