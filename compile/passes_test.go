package compile

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/internal/policygen"
)

// mustProg lays out and checks a symbolic program.
func mustProg(t *testing.T, p sprog) *cbpf.Program {
	t.Helper()
	insns, err := layout(p)
	if err != nil {
		t.Fatalf("layout: %v", err)
	}
	prog, err := cbpf.Check(insns)
	if err != nil {
		t.Fatalf("check: %v\n%v", err, insns)
	}
	return prog
}

// TestPassesAlone runs each optimisation pass alone, to its own fixed
// point, on the unoptimised programs of random policies, and checks that
// the result is valid and decides random requests as the input did. It
// also checks that each pass does change some of them (a pass that never
// fires is not tested by this).
func TestPassesAlone(t *testing.T) {
	for _, ps := range passes() {
		t.Run(ps.name, func(t *testing.T) {
			g := policygen.New(3, 4)
			fired := 0
			for range 80 {
				p := g.Policy(policygen.Options{})
				bo := binary.LittleEndian
				c := &compiler{pol: p, opt: Options{Kernel: abi.Version{Major: 7, Minor: 2}, ByteOrder: bo}}
				for _, op := range policygen.TestOps() {
					sp, err := c.render(op, false)
					if err != nil {
						t.Fatal(err)
					}
					// The pass runs on the rendered program and on every
					// intermediate program the full optimiser makes.
					for _, sp := range intermediates(t, sp) {
						before := mustProg(t, sp)
						q := sp
						for range 1000 {
							q2, changed := ps.run(q)
							if !changed {
								break
							}
							if err := q2.validate(); err != nil {
								t.Fatalf("pass %s broke the program: %v", ps.name, err)
							}
							if len(q2) > len(q) {
								t.Fatalf("pass %s made the program longer: %d -> %d", ps.name, len(q), len(q2))
							}
							q = q2
							fired++
						}
						after := mustProg(t, q)
						for range 100 {
							r := g.Request(p, nil)
							r.Op = op
							w := cbpf.WordsOf(r.Ctx(bo).Encode(bo), bo)
							if a, b := before.Run(&w) != 0, after.Run(&w) != 0; a != b {
								t.Fatalf("pass %s changed the decision for %v: %v -> %v\nbefore:\n%v\nafter:\n%v",
									ps.name, r, a, b, before.Instructions(), after.Instructions())
							}
						}
					}
				}
			}
			if fired == 0 {
				t.Errorf("pass %s never changed a program", ps.name)
			}
		})
	}
}

// intermediates returns p and each program the optimiser makes from it on
// its way to the fixed point.
func intermediates(t *testing.T, p sprog) []sprog {
	out := []sprog{p}
	for {
		changed := false
		for _, ps := range passes() {
			if q, c := ps.run(p); c {
				p, changed = q, true
				out = append(out, p)
			}
		}
		if !changed {
			return out
		}
		if len(out) > 1000 {
			t.Fatal("optimiser does not settle")
		}
	}
}

func ld(k uint32) sins { return sins{in: cbpf.LoadAbs(k)} }

func jif(op uint16, k uint32, t, f int) sins {
	return sins{in: cbpf.JumpIf(op, k, 0, 0), t: t, f: f}
}

func ja(t int) sins { return sins{in: cbpf.Jump(0), t: t} }

func ret(k uint32) sins { return sins{in: cbpf.Ret(k)} }

func alu(op uint16, k uint32) sins { return sins{in: cbpf.ALUK(op, k)} }

// TestPassEffects shows what each pass does to a small program.
func TestPassEffects(t *testing.T) {
	tests := []struct {
		name     string
		run      func(sprog) (sprog, bool)
		in, want sprog
	}{
		{
			name: "thread through ja",
			run:  threadJumps,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ja(4), ret(0), ret(1)},
			want: sprog{ld(16), jif(cbpf.JmpJEQ, 2, 4, 3), ret(1), ret(0), ret(1)},
		},
		{
			name: "thread through a decided comparison",
			// jeq #2 true => the second jeq #2 is true; false => it is false.
			run:  threadJumps,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 2), jif(cbpf.JmpJEQ, 2, 3, 4), ret(1), ret(0)},
			want: sprog{ld(16), jif(cbpf.JmpJEQ, 2, 3, 4), jif(cbpf.JmpJEQ, 2, 3, 4), ret(1), ret(0)},
		},
		{
			name: "thread past a load A already holds",
			run:  threadJumps,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 4, 2), ld(16), jif(cbpf.JmpJEQ, 10, 4, 5), ret(1), ret(0)},
			want: sprog{ld(16), jif(cbpf.JmpJEQ, 2, 4, 3), ld(16), jif(cbpf.JmpJEQ, 10, 4, 5), ret(1), ret(0)},
		},
		{
			name: "thread past a load only a bit test within the mask reads",
			run:  threadJumps,
			in: sprog{ld(16), alu(cbpf.AluAnd, 0xc0), jif(cbpf.JmpJEQ, 0xc0, 7, 3),
				ld(16), jif(cbpf.JmpJSET, 0x40, 6, 5), ld(20), ret(0), ret(1)},
			want: sprog{ld(16), alu(cbpf.AluAnd, 0xc0), jif(cbpf.JmpJEQ, 0xc0, 7, 4),
				ld(16), jif(cbpf.JmpJSET, 0x40, 6, 5), ld(20), ret(0), ret(1)},
		},
		{
			name: "same return both ways",
			run:  threadJumps,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(1)},
			want: sprog{ld(16), ret(1), ret(1), ret(1)},
		},
		{
			name: "unreachable code and ja to the next instruction",
			run:  dropUnreachable,
			in:   sprog{ld(16), ja(2), jif(cbpf.JmpJEQ, 2, 4, 5), ret(7), ret(1), ret(0)},
			want: sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(0)},
		},
		{
			name: "load A holds on every way in",
			run:  dropRedundantLoads,
			in:   sprog{ld(16), alu(cbpf.AluAnd, 0xff), jif(cbpf.JmpJEQ, 2, 3, 3), ld(16), alu(cbpf.AluAnd, 0xff), jif(cbpf.JmpJGT, 9, 6, 7), ret(1), ret(0)},
			want: sprog{ld(16), alu(cbpf.AluAnd, 0xff), jif(cbpf.JmpJEQ, 2, 3, 3), jif(cbpf.JmpJGT, 9, 4, 5), ret(1), ret(0)},
		},
		{
			name: "a load nobody reads",
			run:  dropDeadWrites,
			in:   sprog{ld(16), alu(cbpf.AluAnd, 3), ld(20), jif(cbpf.JmpJEQ, 2, 4, 5), ret(1), ret(0)},
			want: sprog{ld(20), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(0)},
		},
		{
			name: "every return the same",
			run:  foldConstant,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(1)},
			want: sprog{ret(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.validate(); err != nil {
				t.Fatalf("bad test input: %v", err)
			}
			got, changed := tt.run(tt.in)
			if !changed {
				t.Fatalf("pass did not change the program")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tt.want)
			}
			if _, again := tt.run(tt.want); again && len(tt.want) == 1 {
				t.Errorf("pass changes its own fixed point")
			}
		})
	}
}

// TestFacts checks what a path learns from comparisons.
func TestFacts(t *testing.T) {
	tests := []struct {
		learn   cbpf.Instruction
		outcome bool
		decide  cbpf.Instruction
		want    bool
		known   bool
	}{
		{cbpf.JumpIf(cbpf.JmpJEQ, 5, 0, 0), true, cbpf.JumpIf(cbpf.JmpJGT, 4, 0, 0), true, true},
		{cbpf.JumpIf(cbpf.JmpJEQ, 5, 0, 0), true, cbpf.JumpIf(cbpf.JmpJSET, 4, 0, 0), true, true},
		{cbpf.JumpIf(cbpf.JmpJEQ, 5, 0, 0), false, cbpf.JumpIf(cbpf.JmpJEQ, 5, 0, 0), false, true},
		{cbpf.JumpIf(cbpf.JmpJEQ, 5, 0, 0), false, cbpf.JumpIf(cbpf.JmpJEQ, 6, 0, 0), false, false},
		{cbpf.JumpIf(cbpf.JmpJGT, 10, 0, 0), true, cbpf.JumpIf(cbpf.JmpJGE, 11, 0, 0), true, true},
		{cbpf.JumpIf(cbpf.JmpJGT, 10, 0, 0), true, cbpf.JumpIf(cbpf.JmpJEQ, 3, 0, 0), false, true},
		{cbpf.JumpIf(cbpf.JmpJGT, 10, 0, 0), false, cbpf.JumpIf(cbpf.JmpJGE, 11, 0, 0), false, true},
		{cbpf.JumpIf(cbpf.JmpJGT, 10, 0, 0), false, cbpf.JumpIf(cbpf.JmpJGE, 10, 0, 0), false, false},
		{cbpf.JumpIf(cbpf.JmpJGE, 0, 0, 0), false, cbpf.JumpIf(cbpf.JmpJEQ, 0, 0, 0), false, false}, // impossible path: decide nothing
		{cbpf.JumpIf(cbpf.JmpJSET, 0x30, 0, 0), false, cbpf.JumpIf(cbpf.JmpJSET, 0x10, 0, 0), false, true},
		{cbpf.JumpIf(cbpf.JmpJSET, 0x30, 0, 0), false, cbpf.JumpIf(cbpf.JmpJEQ, 0x10, 0, 0), false, true},
		{cbpf.JumpIf(cbpf.JmpJSET, 0x10, 0, 0), true, cbpf.JumpIf(cbpf.JmpJSET, 0x30, 0, 0), true, true},
		{cbpf.JumpIf(cbpf.JmpJSET, 0x30, 0, 0), true, cbpf.JumpIf(cbpf.JmpJSET, 0x10, 0, 0), false, false},
	}
	for _, tt := range tests {
		f := newFacts()
		f.learn(tt.learn, tt.outcome)
		got, known := f.decide(tt.decide)
		if got != tt.want || known != tt.known {
			t.Errorf("after %v=%v, %v: got %v,%v want %v,%v", tt.learn, tt.outcome, tt.decide, got, known, tt.want, tt.known)
		}
	}
}

// TestPassesLeaveAlone shows programs a pass must not change.
func TestPassesLeaveAlone(t *testing.T) {
	tests := []struct {
		name string
		run  func(sprog) (sprog, bool)
		in   sprog
	}{
		{
			// A holds w16&0xff at 4 on its only way in, but a jump enters
			// the group at its "and" (5) with the raw word in A.
			name: "load group entered in the middle",
			run:  dropRedundantLoads,
			in: sprog{ld(16), jif(cbpf.JmpJEQ, 7, 2, 5), alu(cbpf.AluAnd, 0xff), jif(cbpf.JmpJEQ, 2, 4, 4),
				ld(16), alu(cbpf.AluAnd, 0xff), jif(cbpf.JmpJGT, 9, 7, 8), ret(1), ret(0)},
		},
		{
			name: "load A does not hold on one way in",
			run:  dropRedundantLoads,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ld(20), ld(16), jif(cbpf.JmpJGT, 9, 5, 6), ret(1), ret(0)},
		},
		{
			// The bit is outside the mask A holds.
			name: "bit test outside the mask",
			run:  threadJumps,
			in: sprog{ld(16), alu(cbpf.AluAnd, 0xc0), jif(cbpf.JmpJEQ, 0xc0, 7, 3),
				ld(16), jif(cbpf.JmpJSET, 0x100, 6, 5), ld(20), ret(0), ret(1)},
		},
		{
			// After the bit test, A is returned: it must be the raw word.
			name: "bit test whose ways read A",
			run:  threadJumps,
			in: sprog{ld(16), alu(cbpf.AluAnd, 0xc0), jif(cbpf.JmpJEQ, 0xc0, 6, 3),
				ld(16), jif(cbpf.JmpJSET, 0x40, 5, 6), sins{in: cbpf.RetAcc()}, ret(1)},
		},
		{
			name: "load read by a jump",
			run:  dropDeadWrites,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(0)},
		},
		{
			name: "undecided comparison",
			run:  threadJumps,
			in:   sprog{ld(16), jif(cbpf.JmpJGT, 2, 2, 3), jif(cbpf.JmpJEQ, 9, 3, 4), ret(1), ret(0)},
		},
		{
			name: "two different returns",
			run:  foldConstant,
			in:   sprog{ld(16), jif(cbpf.JmpJEQ, 2, 2, 3), ret(1), ret(0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.validate(); err != nil {
				t.Fatalf("bad test input: %v", err)
			}
			if got, changed := tt.run(tt.in); changed {
				t.Errorf("pass changed the program:\n%v", got)
			}
		})
	}
}
