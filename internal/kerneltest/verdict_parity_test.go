package kerneltest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
)

// validGen generates programs io_uring accepts, with constants drawn from
// a pool that the requests use too, so comparisons go both ways.
type validGen struct {
	r    *rand.Rand
	pool []uint32
}

func (g *validGen) konst() uint32 {
	if g.r.IntN(4) == 0 {
		return g.r.Uint32()
	}
	return g.pool[g.r.IntN(len(g.pool))]
}

// program returns a program that cbpf.Check accepts: scratch cells are
// stored in a prefix before any jump, jumps stay inside the program, no
// constant division by zero or shift by 32 or more.
func (g *validGen) program() []cbpf.Instruction {
	n := 2 + g.r.IntN(30)
	var prog []cbpf.Instruction
	var cells []uint32
	for i := g.r.IntN(4); i > 0; i-- {
		c := uint32(g.r.IntN(cbpf.MemWords))
		prog = append(prog, cbpf.LoadAbs(uint32(4*g.r.IntN(10))))
		if g.r.IntN(2) == 0 {
			prog = append(prog, cbpf.Store(c))
		} else {
			prog = append(prog, cbpf.LoadXImm(g.konst()), cbpf.StoreX(c))
		}
		cells = append(cells, c)
	}
	aluOps := []uint16{cbpf.AluAdd, cbpf.AluSub, cbpf.AluMul, cbpf.AluDiv, cbpf.AluOr, cbpf.AluAnd, cbpf.AluLsh, cbpf.AluRsh, cbpf.AluXor}
	jmpOps := []uint16{cbpf.JmpJEQ, cbpf.JmpJGT, cbpf.JmpJGE, cbpf.JmpJSET}
	for len(prog) < n-1 {
		pc := len(prog)
		rem := n - pc - 1 // instructions after this one
		switch x := g.r.IntN(100); {
		case x < 25:
			prog = append(prog, cbpf.LoadAbs(uint32(4*g.r.IntN(10))))
		case x < 30:
			prog = append(prog, []cbpf.Instruction{cbpf.LoadImm(g.konst()), cbpf.LoadXImm(g.konst()), cbpf.LoadLen(), cbpf.LoadXLen()}[g.r.IntN(4)])
		case x < 34 && len(cells) > 0:
			c := cells[g.r.IntN(len(cells))]
			prog = append(prog, []cbpf.Instruction{cbpf.LoadMem(c), cbpf.LoadXMem(c)}[g.r.IntN(2)])
		case x < 50:
			op := aluOps[g.r.IntN(len(aluOps))]
			k := g.konst()
			switch op {
			case cbpf.AluDiv:
				if k == 0 {
					k = 1 + uint32(g.r.IntN(7))
				}
			case cbpf.AluLsh, cbpf.AluRsh:
				k %= 32
			case cbpf.AluAnd:
				k = []uint32{k, 0xff, 0xffff, 0xff00, 1, 0x8000, 0xf}[g.r.IntN(7)]
			}
			prog = append(prog, cbpf.ALUK(op, k))
		case x < 58:
			prog = append(prog, cbpf.ALUX(aluOps[g.r.IntN(len(aluOps))]))
		case x < 60:
			prog = append(prog, cbpf.Neg())
		case x < 64:
			prog = append(prog, []cbpf.Instruction{cbpf.TAX(), cbpf.TXA()}[g.r.IntN(2)])
		case x < 90 && rem > 1:
			op := jmpOps[g.r.IntN(len(jmpOps))]
			jt, jf := uint8(g.r.IntN(min(rem, 256))), uint8(g.r.IntN(min(rem, 256)))
			if g.r.IntN(3) == 0 {
				prog = append(prog, cbpf.JumpIfX(op, jt, jf))
			} else {
				prog = append(prog, cbpf.JumpIf(op, g.konst(), jt, jf))
			}
		case x < 93 && rem > 1:
			prog = append(prog, cbpf.Jump(uint32(g.r.IntN(rem))))
		case x < 97:
			prog = append(prog, []cbpf.Instruction{cbpf.RetAcc(), cbpf.Ret(0), cbpf.Ret(g.konst())}[g.r.IntN(3)])
		default:
			prog = append(prog, cbpf.LoadAbs(uint32(4*g.r.IntN(10))))
		}
	}
	if g.r.IntN(3) == 0 {
		prog = append(prog, cbpf.Ret(uint32(g.r.IntN(2))))
	} else {
		prog = append(prog, cbpf.RetAcc())
	}
	return prog
}

// reqGen generates requests of the five opcodes with data, with values
// from the same pool as the programs.
type reqGen struct {
	r       *rand.Rand
	pool    []uint32
	dir     int32
	udpFD   int32
	udp6FD  int32
	counter int
}

func (g *reqGen) pick32(vs ...uint32) uint32 {
	if g.r.IntN(5) == 0 {
		return g.pool[g.r.IntN(len(g.pool))]
	}
	return vs[g.r.IntN(len(vs))]
}

// flags returns random SQE flags. Varied: ASYNC, IO_LINK and IO_HARDLINK
// (each request is submitted alone, so a link never reaches another
// request), FIXED_FILE and CQE_SKIP_SUCCESS on NOP only (where they have
// no effect before the filter; Ring.Do detects a skipped completion).
// Not varied: IO_DRAIN (it marks later requests of the ring, see
// TestContext) and BUFFER_SELECT (the opcodes here refuse it in
// preparation).
func (g *reqGen) flags(op abi.Opcode) uint8 {
	var f uint8
	for _, b := range []uint8{abi.IOSQEAsync, abi.IOSQEIOLink, abi.IOSQEIOHardlink} {
		if g.r.IntN(4) == 0 {
			f |= b
		}
	}
	if op == abi.OpNop {
		for _, b := range []uint8{abi.IOSQEFixedFile, abi.IOSQECQESkipSuccess} {
			if g.r.IntN(4) == 0 {
				f |= b
			}
		}
	}
	return f
}

func (g *reqGen) request() kernel.Request {
	ops := []abi.Opcode{abi.OpNop, abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect}
	op := ops[g.r.IntN(len(ops))]
	q := kernel.Request{Op: op, Flags: g.flags(op)}
	switch g.r.IntN(3) {
	case 0:
		q.UserData = uint64(g.pool[g.r.IntN(len(g.pool))])
	case 1:
		q.UserData = uint64(g.pool[g.r.IntN(len(g.pool))])<<32 | uint64(g.r.Uint32())
	default:
		q.UserData = g.r.Uint64()
	}
	switch op {
	case abi.OpSocket:
		typ := uint32(g.r.IntN(16))
		if g.r.IntN(3) == 0 {
			typ |= unix.SOCK_NONBLOCK
		}
		if g.r.IntN(3) == 0 {
			typ |= unix.SOCK_CLOEXEC
		}
		q.Socket = kernel.SocketArgs{
			Domain:   g.pick32(unix.AF_INET, unix.AF_INET6, unix.AF_UNIX, unix.AF_NETLINK, unix.AF_PACKET, uint32(g.r.IntN(50)), g.r.Uint32()),
			Type:     typ,
			Protocol: g.pick32(0, 0, 6, 17, 1, 58, 255, uint32(g.r.IntN(300)), g.r.Uint32()),
		}
	case abi.OpOpenat, abi.OpOpenat2:
		bits := []uint64{unix.O_WRONLY, unix.O_RDWR, unix.O_CREAT, unix.O_EXCL, unix.O_NOCTTY, unix.O_TRUNC, unix.O_APPEND,
			unix.O_NONBLOCK, unix.O_DSYNC, unix.O_SYNC, unix.O_DIRECTORY, unix.O_NOFOLLOW, unix.O_NOATIME, unix.O_CLOEXEC,
			unix.O_PATH, unix.O_TMPFILE, unix.O_LARGEFILE, unix.O_ASYNC}
		var flags uint64
		for _, b := range bits {
			if g.r.IntN(6) == 0 {
				flags |= b
			}
		}
		switch g.r.IntN(8) {
		case 0:
			flags |= uint64(g.r.Uint32())
		case 1:
			flags |= uint64(1) << (20 + g.r.IntN(12)) // the high bits, one at a time
		}
		if op == abi.OpOpenat2 && g.r.IntN(10) == 0 {
			flags |= g.r.Uint64() &^ 0xffffffff
		}
		mode := uint64(g.r.IntN(0o10000))
		if g.r.IntN(8) == 0 {
			mode = uint64(g.r.Uint32())
		}
		if op == abi.OpOpenat2 && g.r.IntN(8) == 0 {
			mode = g.r.Uint64()
		}
		g.counter++
		path := []string{"f", "d", "absent", fmt.Sprintf("new%d", g.counter)}[g.r.IntN(4)]
		q.Open = kernel.OpenArgs{Dir: g.dir, Path: path, Flags: flags, Mode: mode}
		if op == abi.OpOpenat2 {
			q.Open.Resolve = uint64(g.r.IntN(0x40))
			if g.r.IntN(10) == 0 {
				q.Open.Resolve = g.r.Uint64()
			}
			q.Open.HowSize = []uint32{24, 24, 24, 32, 16}[g.r.IntN(5)]
		}
	case abi.OpConnect:
		var addr []byte
		pool := g.pool[g.r.IntN(len(g.pool))]
		switch g.r.IntN(4) {
		case 0, 1:
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], []uint32{pool, g.r.Uint32(), 0x7f000001}[g.r.IntN(3)])
			addr = kernel.SockaddrInet4(uint16(g.pick32(80, 443, 0, uint32(g.r.IntN(65536)))), a)
		case 2:
			var a [16]byte
			for i := range a {
				a[i] = byte(g.r.IntN(256))
			}
			binary.BigEndian.PutUint32(a[12:], pool)
			addr = kernel.SockaddrInet6(uint16(g.pick32(80, 443, 0, uint32(g.r.IntN(65536)))), a)
		default:
			addr = make([]byte, 1+g.r.IntN(128))
			for i := range addr {
				addr[i] = byte(g.r.IntN(256))
			}
		}
		if g.r.IntN(2) == 0 {
			addr = append(addr, make([]byte, 128-len(addr))...)
		}
		n := uint32(len(addr))
		switch g.r.IntN(3) {
		case 0:
			n = []uint32{0, 1, 2, 3, 8, 15, 16, 17, 23, 24, 27, 28, 110, 128}[g.r.IntN(14)]
		case 1:
			n = uint32(g.r.IntN(129))
		}
		if n > uint32(len(addr)) {
			n = uint32(len(addr))
		}
		fd := int32(-1)
		if g.r.IntN(4) == 0 {
			fd = []int32{g.udpFD, g.udp6FD}[g.r.IntN(2)]
		}
		q.Connect = kernel.ConnectArgs{FD: fd, Addr: addr, AddrLen: n}
	}
	return q
}

// newPool returns the constants shared by a program and its requests.
func newPool(r *rand.Rand) []uint32 {
	pool := []uint32{0, 1, 2, 10, 0x8000, unix.SOCK_STREAM, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK}
	for i := 0; i < 6; i++ {
		pool = append(pool, []uint32{r.Uint32(), uint32(r.IntN(64)), 1 << r.IntN(32), 0x8000 | uint32(r.IntN(4))<<6}[r.IntN(4)])
	}
	return pool
}

// TestVerdictParity runs random valid programs in the kernel, as ring
// filters on NOP, SOCKET, OPENAT, OPENAT2 and CONNECT, on real requests,
// and requires the kernel's verdict (-EACCES or not) to equal the
// emulator's on the context ringfence predicts for each request.
func TestVerdictParity(t *testing.T) {
	v := needFilters(t)
	s := seed(t)
	nprogs := int(envInt(t, envVerdictPrograms, 1200))
	nreqs := int(envInt(t, envContexts, 16))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	udp6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp6)

	base := newRing(t, kernel.Params{Entries: 4})
	m := &mismatches{t: t}
	var contexts, allowed, denied, ownEACCES, prepRefused, sqpoll int
	perOp := map[string]int{}
	start := time.Now()
	for i := 0; i < nprogs; i++ {
		r := rand.New(rand.NewPCG(s, uint64(i)))
		pool := newPool(r)
		pg := &validGen{r: r, pool: pool}
		insns := pg.program()
		prog, err := cbpf.Check(insns)
		if err != nil {
			t.Fatalf("seed=%d program=%d: the generator made a program cbpf.Check rejects: %v\n%s", s, i, err, rawProgram(insns))
		}
		// One program in eight runs on an SQPOLL ring, where the kernel's
		// poll thread prepares and filters the requests.
		params := kernel.Params{Entries: 4}
		if i%8 == 7 {
			params = kernel.Params{Entries: 4, Flags: kernel.SetupSQPoll, SQThreadIdle: 20}
		}
		ring, err := kernel.NewRing(params)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []abi.Opcode{abi.OpNop, abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect} {
			if err := ring.RegisterFilter(op, insns, 0, 0); err != nil {
				ring.Close()
				t.Fatalf("seed=%d program=%d: the kernel refused a program cbpf.Check accepts: %v\n%s", s, i, err, rawProgram(insns))
			}
		}
		rg := &reqGen{r: r, pool: pool, dir: int32(dfd), udpFD: int32(udp), udp6FD: int32(udp6)}
		for j := 0; j < nreqs; j++ {
			q := rg.request()
			where := fmt.Sprintf("seed=%d program=%d request=%d", s, i, j)
			if q.Op != abi.OpNop {
				res, err := run(base, q)
				if err != nil {
					t.Fatalf("%s: baseline: %v", where, err)
				}
				if res == eacces {
					ownEACCES++
					continue
				}
			}
			res, err := run(ring, q)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			ctx, ok := q.Ctx(v)
			if !ok {
				prepRefused++
				if res == eacces {
					m.add("%s: ringfence predicts the kernel's preparation refuses %v %+v, but the kernel answered -EACCES", where, q.Op, q)
				}
				continue
			}
			raw := ctx.Encode(binary.NativeEndian)
			w := cbpf.WordsOf(raw, binary.NativeEndian)
			emu := prog.Run(&w) != 0
			kern := res != eacces
			contexts++
			perOp[q.Op.String()]++
			if params.Flags&kernel.SetupSQPoll != 0 {
				sqpoll++
			}
			if kern {
				allowed++
			} else {
				denied++
			}
			if emu != kern {
				// Read the context the kernel really built, to tell a wrong
				// prediction from a wrong emulator.
				seen := "(not read)"
				if m.shown < 3 {
					if got, err := observeCtx(q); err != nil {
						seen = "(" + err.Error() + ")"
					} else {
						seen = hexWords(got) + " (words 0, 1: user_data of the read-back)"
					}
				}
				m.add("%s: kernel's context read back: %s\n  predicted: %s", where, seen, hexWords(ctxWords(ctx)))
				m.add("%s: verdict mismatch on Linux %v: kernel %s (res %d), emulator %s (returns %#x)\n  request %v flags %#x %+v\n  context %s\n%s",
					where, v, allowWord(kern), res, allowWord(emu), prog.Run(&w), q.Op, q.Flags, q, hex.EncodeToString(raw[:]), rawProgram(insns))
			}
		}
		ring.Close()
	}
	var ops []string
	for _, k := range sortedKeys(perOp) {
		ops = append(ops, fmt.Sprintf("%s %d", k, perOp[k]))
	}
	vmtest.Figure(t, "verdict contexts", contexts)
	vmtest.Figure(t, "mismatches", m.n)
	if m.n == 0 {
		t.Logf("Linux %v: verdict parity: checked %d programs, %d contexts (%d allowed, %d denied; %s; %d on SQPOLL rings), 0 mismatches in %v; not compared: %d requests failing with EACCES unfiltered, %d refused by preparation",
			v, nprogs, contexts, allowed, denied, strings.Join(ops, ", "), sqpoll, time.Since(start).Round(time.Millisecond), ownEACCES, prepRefused)
	} else {
		t.Errorf("Linux %v: verdict parity: %d mismatches in %d contexts (seed=%d)", v, m.n, contexts, s)
	}
	if allowed < contexts/10 || denied < contexts/10 {
		t.Errorf("the generators are unbalanced: %d allowed, %d denied", allowed, denied)
	}
}

func allowWord(b bool) string {
	if b {
		return "allows"
	}
	return "denies"
}
