package kerneltest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
)

// knownCodes returns every code the kernel's classic checker knows, plus
// the io_uring-only view of them.
func knownCodes() []uint16 {
	var out []uint16
	for c := 0; c < 0x100; c++ {
		if _, err := cbpf.Check([]cbpf.Instruction{{Op: uint16(c)}, cbpf.Ret(1)}); err == nil {
			out = append(out, uint16(c))
		}
	}
	// Codes the generic checker knows but io_uring refuses.
	out = append(out,
		cbpf.ClassLD|cbpf.SizeH|cbpf.ModeABS, cbpf.ClassLD|cbpf.SizeB|cbpf.ModeABS,
		cbpf.ClassLD|cbpf.SizeW|cbpf.ModeIND, cbpf.ClassLD|cbpf.SizeH|cbpf.ModeIND, cbpf.ClassLD|cbpf.SizeB|cbpf.ModeIND,
		cbpf.ClassLDX|cbpf.SizeB|cbpf.ModeMSH,
		cbpf.ClassALU|cbpf.AluMod|cbpf.SrcK, cbpf.ClassALU|cbpf.AluMod|cbpf.SrcX,
		cbpf.ClassRET|cbpf.RetX)
	return out
}

// progGen generates random classic programs biased toward the edges of
// the kernel's rules.
type progGen struct {
	r     *rand.Rand
	known []uint16
}

func (g *progGen) length() int {
	switch x := g.r.IntN(1000); {
	case x < 4:
		return 0
	case x < 12:
		return cbpf.MaxInstructions
	case x < 16:
		return cbpf.MaxInstructions + 1
	case x < 20:
		return cbpf.MaxInstructions - 1 - g.r.IntN(3)
	case x < 400:
		return 1 + g.r.IntN(4)
	case x < 900:
		return 5 + g.r.IntN(20)
	default:
		return 25 + g.r.IntN(200)
	}
}

func (g *progGen) code() uint16 {
	switch x := g.r.IntN(100); {
	case x < 80:
		return g.known[g.r.IntN(len(g.known))]
	case x < 95:
		return uint16(g.r.IntN(0x100))
	default:
		return uint16(g.r.Uint32())
	}
}

func (g *progGen) k(code uint16, n, pc int) uint32 {
	pick := func(vs ...uint32) uint32 { return vs[g.r.IntN(len(vs))] }
	if g.r.IntN(20) == 0 {
		return g.r.Uint32()
	}
	rem := uint32(n - pc - 1)
	switch {
	case code&7 == cbpf.ClassLD && code&0xe0 == cbpf.ModeABS, code&7 == cbpf.ClassLD && code&0xe0 == cbpf.ModeIND:
		return pick(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 37, 38, 39, 40, 41, 44, 1, 2, 3, 0xfffff000, 0xfffff000+4*uint32(g.r.IntN(20)), 0xffffffff)
	case code&7 == cbpf.ClassST, code&7 == cbpf.ClassSTX, code&0xe0 == cbpf.ModeMEM && code&7 <= cbpf.ClassLDX:
		return pick(0, 1, 7, 15, 15, 16, 17, 0x80000000)
	case code&7 == cbpf.ClassALU:
		return pick(0, 0, 1, 2, 31, 31, 32, 32, 33, 0xffffffff, uint32(g.r.IntN(64)))
	case code&7 == cbpf.ClassJMP && code&0xf0 == cbpf.JmpJA:
		return pick(0, rem-1, rem-1, rem, rem, rem+1, 0xffffffff, uint32(g.r.IntN(int(rem)+2)))
	}
	return pick(0, 1, 40, uint32(g.r.IntN(256)))
}

func (g *progGen) jump(n, pc int) uint8 {
	rem := n - pc - 1
	v := []int{0, 0, rem - 1, rem, rem + 1, g.r.IntN(rem + 2), 255}[g.r.IntN(7)]
	return uint8(max(0, min(255, v)))
}

// program returns a random program; most are valid or nearly so.
func (g *progGen) program() []cbpf.Instruction {
	n := g.length()
	prog := make([]cbpf.Instruction, n)
	stored := -1
	for pc := range prog {
		c := g.code()
		in := cbpf.Instruction{Op: c, K: g.k(c, n, pc)}
		if c&7 == cbpf.ClassJMP {
			in.Jt, in.Jf = g.jump(n, pc), g.jump(n, pc)
		}
		// Bias scratch loads toward a cell stored earlier.
		if c&7 <= cbpf.ClassLDX && c&0xe0 == cbpf.ModeMEM && stored >= 0 && g.r.IntN(2) == 0 {
			in.K = uint32(stored)
		}
		if c&7 == cbpf.ClassST || c&7 == cbpf.ClassSTX {
			stored = int(in.K)
		}
		prog[pc] = in
	}
	if n > 0 && g.r.IntN(100) < 85 {
		if g.r.IntN(2) == 0 {
			prog[n-1] = cbpf.Ret(g.r.Uint32() % 3)
		} else {
			prog[n-1] = cbpf.RetAcc()
		}
	}
	return prog
}

// checkerParity registers prog on a ring and compares the kernel's answer
// with cbpf.Check. It returns whether the kernel accepted it.
func checkerParity(t testing.TB, ring *kernel.Ring, prog []cbpf.Instruction, m *mismatches, where string) bool {
	t.Helper()
	kerr := ring.RegisterFilter(abi.OpNop, prog, 0, 0)
	if kerr != nil && !errors.Is(kerr, unix.EINVAL) {
		t.Fatalf("%s: registering a program failed other than with EINVAL: %v\n%s", where, kerr, rawProgram(prog))
	}
	_, cerr := cbpf.Check(prog)
	if (kerr == nil) != (cerr == nil) {
		m.add("%s: checker parity mismatch: kernel %s, cbpf.Check %s (%d instructions)\n%s",
			where, verdict(kerr), verdict(cerr), len(prog), rawProgram(prog))
	}
	return kerr == nil
}

func verdict(err error) string {
	if err == nil {
		return "accepts"
	}
	return "rejects (" + err.Error() + ")"
}

// parityRing hands out rings for registrations, replacing the ring after
// every limit accepted programs so that no ring grows without bound.
type parityRing struct {
	t     testing.TB
	r     *kernel.Ring
	count int
	limit int
}

func (p *parityRing) get() *kernel.Ring {
	if p.r == nil || p.count >= p.limit {
		if p.r != nil {
			p.r.Close()
		}
		r, err := kernel.NewRing(kernel.Params{Entries: 1})
		if err != nil {
			p.t.Fatal(err)
		}
		p.r, p.count = r, 0
	}
	return p.r
}

func (p *parityRing) accepted() { p.count++ }

func (p *parityRing) close() {
	if p.r != nil {
		p.r.Close()
	}
}

// TestCheckerParityCodes registers every code below 0x100 (and a sample
// above) as the first instruction of a two-instruction program, with k = 0
// and k = 4, and a program of each known code in every position of a
// short program.
func TestCheckerParityCodes(t *testing.T) {
	v := needFilters(t)
	s := seed(t)
	r := rand.New(rand.NewPCG(s, 0xc0de))
	pr := &parityRing{t: t, limit: 256}
	defer pr.close()
	m := &mismatches{t: t}
	var progs, accepted int
	try := func(prog []cbpf.Instruction, where string) {
		progs++
		if checkerParity(t, pr.get(), prog, m, where) {
			accepted++
			pr.accepted()
		}
	}
	for c := 0; c < 0x100; c++ {
		for _, k := range []uint32{0, 4} {
			try([]cbpf.Instruction{{Op: uint16(c), K: k}, cbpf.Ret(1)}, fmt.Sprintf("code %#04x k=%d", c, k))
		}
		// As the last instruction: only a RET may end a program.
		try([]cbpf.Instruction{cbpf.LoadImm(1), {Op: uint16(c)}}, fmt.Sprintf("code %#04x last", c))
	}
	for i := 0; i < 512; i++ {
		c := uint16(0x100 + r.IntN(0xff00))
		try([]cbpf.Instruction{{Op: c}, cbpf.Ret(1)}, fmt.Sprintf("code %#04x", c))
	}
	vmtest.Figure(t, "checker programs", progs)
	vmtest.Figure(t, "mismatches", m.n)
	if m.n == 0 {
		t.Logf("Linux %v: checker parity (codes): checked %d programs (%d accepted by the kernel), 0 mismatches", v, progs, accepted)
	} else {
		t.Errorf("Linux %v: checker parity (codes): %d mismatches in %d programs (seed=%d)", v, m.n, progs, s)
	}
}

// TestCheckerParityRandom registers many random programs and requires
// cbpf.Check to accept exactly those the kernel accepts.
func TestCheckerParityRandom(t *testing.T) {
	v := needFilters(t)
	s := seed(t)
	n := int(envInt(t, envCheckPrograms, 20000))
	g := &progGen{known: knownCodes()}
	pr := &parityRing{t: t, limit: 256}
	defer pr.close()
	m := &mismatches{t: t}
	accepted := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		g.r = rand.New(rand.NewPCG(s, uint64(i)))
		prog := g.program()
		if checkerParity(t, pr.get(), prog, m, fmt.Sprintf("seed=%d program=%d", s, i)) {
			accepted++
			pr.accepted()
		}
	}
	vmtest.Figure(t, "checker programs", n)
	vmtest.Figure(t, "mismatches", m.n)
	if m.n == 0 {
		t.Logf("Linux %v: checker parity: checked %d programs (%d accepted, %d rejected by the kernel), 0 mismatches in %v",
			v, n, accepted, n-accepted, time.Since(start).Round(time.Millisecond))
	} else {
		t.Errorf("Linux %v: checker parity: %d mismatches in %d programs (seed=%d)", v, m.n, n, s)
	}
	if accepted < n/10 || accepted > n*9/10 {
		t.Errorf("the generator is unbalanced: %d of %d programs accepted", accepted, n)
	}
}
