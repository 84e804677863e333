package asm

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// fill returns n filler instructions.
func fill(n int) string { return strings.Repeat("\tld #0\n", n) }

func fillInsns(n int) []cbpf.Instruction {
	p := make([]cbpf.Instruction, n)
	for i := range p {
		p[i] = cbpf.LoadImm(0)
	}
	return p
}

func cat(parts ...[]cbpf.Instruction) []cbpf.Instruction { return slices.Concat(parts...) }

func one(in ...cbpf.Instruction) []cbpf.Instruction { return in }

func TestLongJumps(t *testing.T) {
	jeq := func(jt, jf uint8) cbpf.Instruction { return cbpf.JumpIf(cbpf.JmpJEQ, 1, jt, jf) }
	cases := []struct {
		name string
		src  string
		want []cbpf.Instruction
	}{
		{"true target 255 away stays short",
			"jeq #1, far\n" + fill(255) + "far: ret #1\n",
			cat(one(jeq(255, 0)), fillInsns(255), one(cbpf.Ret(1)))},
		{"true target 256 away",
			"jeq #1, far\n" + fill(256) + "far: ret #1\n",
			cat(one(jeq(0, 1), cbpf.Jump(256)), fillInsns(256), one(cbpf.Ret(1)))},
		{"false target far",
			"jeq #1, near, far\nnear: ret #0\n" + fill(300) + "far: ret #1\n",
			cat(one(jeq(1, 0), cbpf.Jump(301)), one(cbpf.Ret(0)), fillInsns(300), one(cbpf.Ret(1)))},
		{"jne lowers its false target",
			"jne #1, far\n" + fill(300) + "far: ret #1\n",
			cat(one(jeq(1, 0), cbpf.Jump(300)), fillInsns(300), one(cbpf.Ret(1)))},
		{"both far, different targets",
			"jeq #1, t, f\n" + fill(300) + "t: ret #1\n" + fill(10) + "f: ret #0\n",
			cat(one(jeq(0, 1), cbpf.Jump(301), cbpf.Jump(311)), fillInsns(300), one(cbpf.Ret(1)), fillInsns(10), one(cbpf.Ret(0)))},
		{"both far, same target: one ja",
			"jeq #1, t, t\n" + fill(300) + "t: ret #1\n",
			cat(one(jeq(0, 0), cbpf.Jump(300)), fillInsns(300), one(cbpf.Ret(1)))},
		{"near target pushed over the limit by the ja",
			// The false target is 255 away until the true target's ja
			// is inserted, which makes it 256 away.
			"jeq #1, t, f\n" + fill(255) + "f: ret #0\n" + fill(10) + "t: ret #1\n",
			cat(one(jeq(0, 1), cbpf.Jump(267), cbpf.Jump(255)), fillInsns(255), one(cbpf.Ret(0)), fillInsns(10), one(cbpf.Ret(1)))},
		{"cascade: lowering one jump makes another long",
			"jeq #1, a\njeq #2, b\n" + fill(254) + "a: ret #0\n" + fill(300) + "b: ret #1\n",
			cat(one(jeq(0, 1), cbpf.Jump(256), cbpf.JumpIf(cbpf.JmpJEQ, 2, 0, 1), cbpf.Jump(555)), fillInsns(254), one(cbpf.Ret(0)), fillInsns(300), one(cbpf.Ret(1)))},
		{"numeric offsets are never lowered",
			"jeq #1, +255, +0\n" + fill(300) + "ret #1\n",
			cat(one(jeq(255, 0)), fillInsns(300), one(cbpf.Ret(1)))},
		{"ja has 32-bit offsets",
			"ja far\n" + fill(70000) + "far: ret #1\n",
			cat(one(cbpf.Jump(70000)), fillInsns(70000), one(cbpf.Ret(1)))},
		{"conditional jump over 65536",
			"jeq #1, far\n" + fill(70000) + "far: ret #1\n",
			cat(one(jeq(0, 1), cbpf.Jump(70000)), fillInsns(70000), one(cbpf.Ret(1)))},
	}
	for _, c := range cases {
		got, err := Assemble([]byte(c.src), "long.s")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			n := min(len(got), 6)
			t.Errorf("%s: got %d instructions starting %v, want %d starting %v", c.name, len(got), got[:n], len(c.want), c.want[:min(len(c.want), 6)])
		}
	}
}

// TestLongJumpSemantics runs a lowered program in the emulator: the
// lowered jumps must decide as the source says.
func TestLongJumpSemantics(t *testing.T) {
	src := `.view socket
	ld [socket.family]
	jeq #AF_INET, inet, other
inet:
` + fill(400) + `	ld [socket.type]
	jeq #SOCK_STREAM, allow, deny
other:
	jne #AF_UNIX, deny
` + fill(300) + `allow:	ret #1
deny:	ret #0
`
	prog, err := Assemble([]byte(src), "sem.s")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cbpf.Check(prog)
	if err != nil {
		t.Fatalf("lowered program rejected: %v", err)
	}
	for _, c := range []struct {
		family, typ uint32
		want        uint32
	}{{2, 1, 1}, {2, 2, 0}, {1, 0, 1}, {10, 1, 0}} {
		var ctx abi.Ctx
		ctx.Opcode = uint8(abi.OpSocket)
		ctx.SetSocket(abi.SocketData{Family: c.family, Type: c.typ}, binary.LittleEndian)
		w := cbpf.WordsOf(ctx.Encode(binary.LittleEndian), binary.LittleEndian)
		if got := p.Run(&w); got != c.want {
			t.Errorf("family %d type %d: returned %d, want %d", c.family, c.typ, got, c.want)
		}
	}
}

// TestLongJumpRandom assembles random programs with long and short forward
// jumps and checks, for every jump, that following the emitted offsets
// (through inserted JAs) reaches the label's instruction, that every
// lowered target was more than 255 away, and that re-disassembly round
// trips.
func TestLongJumpRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for iter := 0; iter < 40; iter++ {
		var b strings.Builder
		type ref struct{ line, tLine, fLine int }
		var jumps []ref
		nLabels := 2 + r.Intn(8)
		// Lines: each label line is "Ln: ld #n"; jumps refer to labels
		// by number and are placed before their targets.
		line := 0
		labelLine := make([]int, nLabels)
		for l := 0; l < nLabels; l++ {
			for j := r.Intn(4); j > 0; j-- {
				line++
				tl := l + r.Intn(nLabels-l)
				fl := l + r.Intn(nLabels-l)
				fmt.Fprintf(&b, "jeq #%d, L%d, L%d\n", j, tl, fl)
				jumps = append(jumps, ref{line: line, tLine: tl, fLine: fl})
			}
			n := r.Intn(3) * r.Intn(200)
			b.WriteString(fill(n))
			line += n
			line++
			labelLine[l] = line
			fmt.Fprintf(&b, "L%d: ret #%d\n", l, l)
		}
		o, err := AssembleFile([]byte(b.String()), "rand.s")
		if err != nil {
			t.Fatal(err)
		}
		first := map[int]int{} // source line -> first emitted pc
		for pc, p := range o.Pos {
			if _, ok := first[p.Line]; !ok {
				first[p.Line] = pc
			}
		}
		follow := func(pc int, off uint8) (int, bool) {
			d := pc + 1 + int(off)
			in := o.Insns[d]
			if o.Pos[d] == o.Pos[pc] && in.Op == cbpf.ClassJMP|cbpf.JmpJA {
				return d + 1 + int(in.K), true
			}
			return d, false
		}
		for _, j := range jumps {
			pc := first[j.line]
			in := o.Insns[pc]
			for _, side := range []struct {
				off  uint8
				want int
			}{{in.Jt, labelLine[j.tLine]}, {in.Jf, labelLine[j.fLine]}} {
				got, lowered := follow(pc, side.off)
				if got != first[side.want] {
					t.Fatalf("iter %d line %d: jump reaches pc %d, want %d (line %d)", iter, j.line, got, first[side.want], side.want)
				}
				if dist := first[side.want] - (pc + 1); lowered && dist <= 255 {
					t.Errorf("iter %d line %d: target %d away was lowered", iter, j.line, dist)
				}
			}
		}
		roundTrip(t, o.Insns, Options{})
	}
}
