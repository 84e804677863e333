package cbpf

import (
	"encoding/binary"

	"github.com/ringfence/ringfence/abi"
)

// Words is the filter context as a program sees it: the ten 32-bit words
// that "ld [k]" loads, word i at byte offset 4*i, in the machine's order.
type Words [abi.CtxSize / 4]uint32

// WordsOf splits a 40-byte context into the words a program loads, reading
// each word in byte order bo (the order of the machine that runs the
// filter; binary.LittleEndian on x86-64).
func WordsOf(ctx [abi.CtxSize]byte, bo binary.ByteOrder) Words {
	var w Words
	for i := range w {
		w[i] = bo.Uint32(ctx[4*i:])
	}
	return w
}

// op kinds of the predecoded program; one per instruction io_uring allows.
const (
	opLoadWord uint8 = iota // A = word[k]
	opLoadImm               // A = k (also ld len, with k = 40)
	opLoadXImm              // X = k (also ldx len)
	opLoadMem               // A = M[k]
	opLoadXMem              // X = M[k]
	opStore                 // M[k] = A
	opStoreX                // M[k] = X
	opAddK
	opAddX
	opSubK
	opSubX
	opMulK
	opMulX
	opDivK
	opDivX // returns 0 when X is 0
	opAndK
	opAndX
	opOrK
	opOrX
	opXorK
	opXorX
	opLshK
	opLshX // shift by X & 31
	opRshK
	opRshX
	opNeg
	opTAX
	opTXA
	opJA // pc = t
	opJEQK
	opJEQX
	opJGTK
	opJGTX
	opJGEK
	opJGEX
	opJSETK
	opJSETX
	opRetK
	opRetA
	opJEQRun // a run of jeq #k that fall through when false; see fuseJEQRuns
)

// op is one predecoded instruction: jump targets are absolute.
type op struct {
	kind   uint8
	k      uint32
	jt, jf uint16
}

// cmp is one "jeq #k, t" of a fused run.
type cmp struct {
	k uint32
	t uint16
}

// predecode translates a checked program into the emulator's form.
func predecode(prog []Instruction) ([]op, []cmp) {
	code := make([]op, len(prog))
	for pc, in := range prog {
		o := op{k: in.K, jt: uint16(pc + 1 + int(in.Jt)), jf: uint16(pc + 1 + int(in.Jf))}
		switch in.Op {
		case ClassLD | SizeW | ModeABS:
			o.kind, o.k = opLoadWord, in.K/4
		case ClassLD | SizeW | ModeLEN:
			o.kind, o.k = opLoadImm, abi.CtxSize
		case ClassLDX | SizeW | ModeLEN:
			o.kind, o.k = opLoadXImm, abi.CtxSize
		case ClassLD | ModeIMM:
			o.kind = opLoadImm
		case ClassLDX | ModeIMM:
			o.kind = opLoadXImm
		case ClassLD | ModeMEM:
			o.kind = opLoadMem
		case ClassLDX | ModeMEM:
			o.kind = opLoadXMem
		case ClassST:
			o.kind = opStore
		case ClassSTX:
			o.kind = opStoreX
		case ClassALU | AluAdd | SrcK:
			o.kind = opAddK
		case ClassALU | AluAdd | SrcX:
			o.kind = opAddX
		case ClassALU | AluSub | SrcK:
			o.kind = opSubK
		case ClassALU | AluSub | SrcX:
			o.kind = opSubX
		case ClassALU | AluMul | SrcK:
			o.kind = opMulK
		case ClassALU | AluMul | SrcX:
			o.kind = opMulX
		case ClassALU | AluDiv | SrcK:
			o.kind = opDivK
		case ClassALU | AluDiv | SrcX:
			o.kind = opDivX
		case ClassALU | AluAnd | SrcK:
			o.kind = opAndK
		case ClassALU | AluAnd | SrcX:
			o.kind = opAndX
		case ClassALU | AluOr | SrcK:
			o.kind = opOrK
		case ClassALU | AluOr | SrcX:
			o.kind = opOrX
		case ClassALU | AluXor | SrcK:
			o.kind = opXorK
		case ClassALU | AluXor | SrcX:
			o.kind = opXorX
		case ClassALU | AluLsh | SrcK:
			o.kind = opLshK
		case ClassALU | AluLsh | SrcX:
			o.kind = opLshX
		case ClassALU | AluRsh | SrcK:
			o.kind = opRshK
		case ClassALU | AluRsh | SrcX:
			o.kind = opRshX
		case ClassALU | AluNeg:
			o.kind = opNeg
		case ClassMISC | MiscTAX:
			o.kind = opTAX
		case ClassMISC | MiscTXA:
			o.kind = opTXA
		case ClassJMP | JmpJA:
			o.kind, o.jt = opJA, uint16(pc+1+int(in.K))
		case ClassJMP | JmpJEQ | SrcK:
			o.kind = opJEQK
		case ClassJMP | JmpJEQ | SrcX:
			o.kind = opJEQX
		case ClassJMP | JmpJGT | SrcK:
			o.kind = opJGTK
		case ClassJMP | JmpJGT | SrcX:
			o.kind = opJGTX
		case ClassJMP | JmpJGE | SrcK:
			o.kind = opJGEK
		case ClassJMP | JmpJGE | SrcX:
			o.kind = opJGEX
		case ClassJMP | JmpJSET | SrcK:
			o.kind = opJSETK
		case ClassJMP | JmpJSET | SrcX:
			o.kind = opJSETX
		case ClassRET | RetK:
			o.kind = opRetK
		case ClassRET | RetA:
			o.kind = opRetA
		default:
			// Unreachable for checked programs: Check refuses every other code.
			panic("cbpf: predecode of unchecked instruction " + in.String())
		}
		code[pc] = o
	}
	return code, fuseJEQRuns(code)
}

// minRun is the shortest run of jeq worth fusing.
const minRun = 3

// fuseJEQRuns finds runs of "jeq #k, t" whose false branch falls through to
// the next instruction (the shape of set-membership chains) and turns the
// first op of each suffix of such a run into opJEQRun, which compares A
// against the whole run in a tight loop instead of one dispatch per
// instruction. A does not change inside a run, so the result is the same.
// Every pc keeps an op of its own, so jumps into a run still work. It
// returns the comparisons, indexed by pc.
func fuseJEQRuns(code []op) []cmp {
	var cmps []cmp
	end := len(code) // exit of the run that contains pc+1
	for pc := len(code) - 1; pc >= 0; pc-- {
		o := &code[pc]
		if o.kind != opJEQK || int(o.jf) != pc+1 {
			end = pc
			continue
		}
		if end == pc+1 || (pc+1 < len(code) && code[pc+1].kind != opJEQK && code[pc+1].kind != opJEQRun) {
			end = pc + 1
		}
		if end-pc < minRun {
			continue
		}
		if cmps == nil {
			cmps = make([]cmp, len(code))
		}
		for i := pc; i < end; i++ {
			cmps[i] = cmp{k: code[i].k, t: code[i].jt}
		}
		o.kind, o.jf = opJEQRun, uint16(end)
	}
	return cmps
}

// Run executes the program on context w exactly as the kernel does and
// returns the program's return value: 0 denies the request, anything else
// allows it. A and X start at 0; arithmetic is unsigned 32-bit and wraps; a
// division by X when X is 0 makes the program return 0; shift amounts taken
// from X use their low 5 bits; comparisons are unsigned.
func (p *Program) Run(w *Words) uint32 {
	if o := p.code[0]; o.kind == opRetK {
		return o.k // a constant verdict needs no machine state
	}
	return run(p.code, p.cmps, w, nil)
}

// Trace is Run that also returns the indexes of the instructions executed,
// in order, for explaining a decision.
func (p *Program) Trace(w *Words) (ret uint32, path []int) {
	ret = run(p.code, p.cmps, w, &path)
	return ret, path
}

// Allows reports whether the program allows a request with context w.
func (p *Program) Allows(w *Words) bool { return p.Run(w) != 0 }

// run is the one emulator core. When path is not nil, it records the
// index of each instruction executed.
func run(code []op, cmps []cmp, w *Words, path *[]int) uint32 {
	var a, x uint32
	var mem [MemWords]uint32
	pc := 0
	for {
		if path != nil {
			*path = append(*path, pc)
		}
		o := &code[pc]
		pc++
		switch o.kind {
		case opLoadWord:
			a = w[o.k]
		case opLoadImm:
			a = o.k
		case opLoadXImm:
			x = o.k
		case opLoadMem:
			a = mem[o.k&(MemWords-1)]
		case opLoadXMem:
			x = mem[o.k&(MemWords-1)]
		case opStore:
			mem[o.k&(MemWords-1)] = a
		case opStoreX:
			mem[o.k&(MemWords-1)] = x
		case opAddK:
			a += o.k
		case opAddX:
			a += x
		case opSubK:
			a -= o.k
		case opSubX:
			a -= x
		case opMulK:
			a *= o.k
		case opMulX:
			a *= x
		case opDivK:
			a /= o.k
		case opDivX:
			if x == 0 {
				return 0
			}
			a /= x
		case opAndK:
			a &= o.k
		case opAndX:
			a &= x
		case opOrK:
			a |= o.k
		case opOrX:
			a |= x
		case opXorK:
			a ^= o.k
		case opXorX:
			a ^= x
		case opLshK:
			a <<= o.k & 31
		case opLshX:
			a <<= x & 31
		case opRshK:
			a >>= o.k & 31
		case opRshX:
			a >>= x & 31
		case opNeg:
			a = -a
		case opTAX:
			x = a
		case opTXA:
			a = x
		case opJA:
			pc = int(o.jt)
		case opJEQK:
			pc = pick(a == o.k, o)
		case opJEQX:
			pc = pick(a == x, o)
		case opJGTK:
			pc = pick(a > o.k, o)
		case opJGTX:
			pc = pick(a > x, o)
		case opJGEK:
			pc = pick(a >= o.k, o)
		case opJGEX:
			pc = pick(a >= x, o)
		case opJSETK:
			pc = pick(a&o.k != 0, o)
		case opJSETX:
			pc = pick(a&x != 0, o)
		case opRetK:
			return o.k
		case opRetA:
			return a
		case opJEQRun:
			i, end := pc-1, int(o.jf)
			for i < end && cmps[i].k != a {
				i++
			}
			if path != nil {
				for j := pc; j <= i && j < end; j++ {
					*path = append(*path, j)
				}
			}
			if i < end {
				pc = int(cmps[i].t)
			} else {
				pc = end
			}
		}
	}
}

func pick(cond bool, o *op) int {
	if cond {
		return int(o.jt)
	}
	return int(o.jf)
}
