package cbpf

import (
	"fmt"

	"github.com/ringfence/ringfence/abi"
)

// CheckError says why the kernel would refuse a program: which instruction
// and which rule. PC is -1 for errors about the program as a whole.
type CheckError struct {
	PC     int         // index of the offending instruction, or -1
	Insn   Instruction // the offending instruction (zero when PC is -1)
	Reason string      // what is wrong, in words a policy author understands
}

// Error returns "instruction PC {code, jt, jf, k}: reason".
func (e *CheckError) Error() string {
	if e.PC < 0 {
		return "program rejected: " + e.Reason
	}
	return fmt.Sprintf("instruction %d %v: %s", e.PC, e.Insn, e.Reason)
}

func reject(prog []Instruction, pc int, format string, args ...any) *CheckError {
	e := &CheckError{PC: pc, Reason: fmt.Sprintf(format, args...)}
	if pc >= 0 && pc < len(prog) {
		e.Insn = prog[pc]
	}
	return e
}

// ioURingCode reports whether io_uring filters may use code op at all
// (io_uring/bpf_filter.c); LD|W|ABS is further limited to context words.
func ioURingCode(op uint16) bool {
	switch op {
	case ClassLD | SizeW | ModeABS, ClassLD | SizeW | ModeLEN, ClassLDX | SizeW | ModeLEN,
		ClassRET | RetK, ClassRET | RetA,
		ClassALU | AluAdd | SrcK, ClassALU | AluAdd | SrcX,
		ClassALU | AluSub | SrcK, ClassALU | AluSub | SrcX,
		ClassALU | AluMul | SrcK, ClassALU | AluMul | SrcX,
		ClassALU | AluDiv | SrcK, ClassALU | AluDiv | SrcX,
		ClassALU | AluAnd | SrcK, ClassALU | AluAnd | SrcX,
		ClassALU | AluOr | SrcK, ClassALU | AluOr | SrcX,
		ClassALU | AluXor | SrcK, ClassALU | AluXor | SrcX,
		ClassALU | AluLsh | SrcK, ClassALU | AluLsh | SrcX,
		ClassALU | AluRsh | SrcK, ClassALU | AluRsh | SrcX,
		ClassALU | AluNeg,
		ClassLD | ModeIMM, ClassLDX | ModeIMM, ClassMISC | MiscTAX, ClassMISC | MiscTXA,
		ClassLD | ModeMEM, ClassLDX | ModeMEM, ClassST, ClassSTX,
		ClassJMP | JmpJA,
		ClassJMP | JmpJEQ | SrcK, ClassJMP | JmpJEQ | SrcX,
		ClassJMP | JmpJGE | SrcK, ClassJMP | JmpJGE | SrcX,
		ClassJMP | JmpJGT | SrcK, ClassJMP | JmpJGT | SrcX,
		ClassJMP | JmpJSET | SrcK, ClassJMP | JmpJSET | SrcX:
		return true
	}
	return false
}

// classicCode reports whether op is a code the kernel's generic classic-BPF
// checker knows (net/core/filter.c, chk_code_allowed): every code io_uring
// allows, and the packet-filter codes it refuses.
func classicCode(op uint16) bool {
	if ioURingCode(op) {
		return true
	}
	switch op {
	case ClassALU | AluMod | SrcK, ClassALU | AluMod | SrcX,
		ClassLD | SizeH | ModeABS, ClassLD | SizeB | ModeABS,
		ClassLD | SizeW | ModeIND, ClassLD | SizeH | ModeIND, ClassLD | SizeB | ModeIND,
		ClassLDX | SizeB | ModeMSH:
		return true
	}
	return false
}

// skfAdOff is SKF_AD_OFF, where the ancillary loads of socket filters start.
const skfAdOff = 0xfffff000

// knownAncillary reports whether k is one of the SKF_AD_* offsets the
// kernel knows (relative to SKF_AD_OFF); an absolute load at SKF_AD_OFF+k
// for another k is refused by the generic checker.
func knownAncillary(k uint32) bool {
	switch k - skfAdOff {
	case 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60:
		return true
	}
	return false
}

// CheckClassic applies only the kernel's generic classic-BPF rules
// (net/core/filter.c: bpf_check_classic and check_load_and_stores): length,
// known codes, constant division by zero, shift limits, scratch indexes,
// jump ranges, a RET at the end, and no scratch load before a store.
func CheckClassic(prog []Instruction) error {
	n := len(prog)
	if n == 0 {
		return reject(prog, -1, "the program is empty; it needs at least one instruction (a RET)")
	}
	if n > MaxInstructions {
		return reject(prog, -1, "the program has %d instructions; the kernel allows at most %d", n, MaxInstructions)
	}
	for pc, in := range prog {
		if !classicCode(in.Op) {
			return reject(prog, pc, "unknown instruction code %#04x", in.Op)
		}
		switch in.Op {
		case ClassALU | AluDiv | SrcK, ClassALU | AluMod | SrcK:
			if in.K == 0 {
				return reject(prog, pc, "division by the constant 0")
			}
		case ClassALU | AluLsh | SrcK, ClassALU | AluRsh | SrcK:
			if in.K >= 32 {
				return reject(prog, pc, "shift by %d; constant shifts must be below 32", in.K)
			}
		case ClassLD | ModeMEM, ClassLDX | ModeMEM, ClassST, ClassSTX:
			if in.K >= MemWords {
				return reject(prog, pc, "scratch cell M[%d] does not exist; cells are M[0] to M[%d]", in.K, MemWords-1)
			}
		case ClassJMP | JmpJA:
			if uint64(in.K) >= uint64(n-pc-1) {
				return reject(prog, pc, "ja +%d jumps past the end of the program (at most +%d here)", in.K, n-pc-2)
			}
		case ClassLD | SizeW | ModeABS, ClassLD | SizeH | ModeABS, ClassLD | SizeB | ModeABS:
			if in.K >= skfAdOff && !knownAncillary(in.K) {
				return reject(prog, pc, "unknown ancillary load at offset %#x", in.K)
			}
		default:
			if in.IsConditionalJump() {
				if pc+int(in.Jt)+1 >= n || pc+int(in.Jf)+1 >= n {
					return reject(prog, pc, "conditional jump (+%d true, +%d false) goes past the end of the program (at most +%d here)",
						in.Jt, in.Jf, n-pc-2)
				}
			}
		}
	}
	last := prog[n-1].Op
	if last != ClassRET|RetK && last != ClassRET|RetA {
		return reject(prog, n-1, "the last instruction must be a RET, so every path ends with a verdict")
	}
	return checkScratch(prog)
}

// checkScratch is the kernel's one-pass scratch-memory check: a load of a
// cell is refused unless a store to it happened on every path that reaches
// the load, computed as the kernel computes it (in program order; a RET
// does not reset what is known).
func checkScratch(prog []Instruction) error {
	masks := make([]uint16, len(prog))
	for i := range masks {
		masks[i] = 0xffff
	}
	var valid uint16
	for pc, in := range prog {
		valid &= masks[pc]
		switch in.Op {
		case ClassST, ClassSTX:
			valid |= 1 << in.K
		case ClassLD | ModeMEM, ClassLDX | ModeMEM:
			if valid&(1<<in.K) == 0 {
				return reject(prog, pc, "reads scratch cell M[%d] before a store to it on some path", in.K)
			}
		case ClassJMP | JmpJA:
			masks[pc+1+int(in.K)] &= valid
			valid = 0xffff
		default:
			if in.IsConditionalJump() {
				masks[pc+1+int(in.Jt)] &= valid
				masks[pc+1+int(in.Jf)] &= valid
				valid = 0xffff
			}
		}
	}
	return nil
}

// checkIOURing applies io_uring's own rules on top of the classic ones:
// only the codes io_uring filters allow, and context loads that are 4-byte
// aligned and inside the 40-byte context.
func checkIOURing(prog []Instruction) error {
	for pc, in := range prog {
		switch {
		case !ioURingCode(in.Op):
			return reject(prog, pc, "%s", ioURingRefusal(in))
		case in.Op == ClassLD|SizeW|ModeABS && (in.K >= abi.CtxSize || in.K%4 != 0):
			return reject(prog, pc, "ld [%d]: context loads must be 4-byte aligned words at offsets 0 to %d", in.K, abi.CtxSize-4)
		}
	}
	return nil
}

// ioURingRefusal explains why io_uring refuses a classic code it knows.
func ioURingRefusal(in Instruction) string {
	switch {
	case in.Class() == ClassLD && in.Op&0xe0 == ModeABS:
		return "io_uring filters load only whole 32-bit words (ld [k]); byte and half-word loads are not allowed"
	case in.Op&0xe0 == ModeIND:
		return "indirect loads (ld [x+k]) are not allowed in io_uring filters"
	case in.Op == ClassLDX|SizeB|ModeMSH:
		return "ldx 4*([k]&0xf) (the IP header length load) is not allowed in io_uring filters"
	case in.Class() == ClassALU && in.Op&0xf0 == AluMod:
		return "mod is not allowed in io_uring filters"
	}
	return fmt.Sprintf("instruction code %#04x is not allowed in io_uring filters", in.Op)
}

// Program is a classic BPF program that Linux 7.x accepts as an io_uring
// filter. It is immutable; make one with Check.
type Program struct {
	insns []Instruction
	code  []op  // predecoded form the emulator runs
	cmps  []cmp // comparisons of fused jeq runs, by pc
}

// Check returns prog as a Program if the kernel would accept it as an
// io_uring filter: first the generic classic-BPF rules (CheckClassic), then
// io_uring's own. Otherwise the error is a *CheckError naming the first
// offending instruction, as the kernel checks in that order.
func Check(prog []Instruction) (*Program, error) {
	if err := CheckClassic(prog); err != nil {
		return nil, err
	}
	if err := checkIOURing(prog); err != nil {
		return nil, err
	}
	insns := append([]Instruction(nil), prog...)
	code, cmps := predecode(insns)
	return &Program{insns: insns, code: code, cmps: cmps}, nil
}

// MustCheck is like Check but panics if prog is rejected. It is for
// programs written as literals in code and tests.
func MustCheck(prog []Instruction) *Program {
	p, err := Check(prog)
	if err != nil {
		panic(err)
	}
	return p
}

// Instructions returns a copy of the program's instructions.
func (p *Program) Instructions() []Instruction {
	return append([]Instruction(nil), p.insns...)
}

// Len returns the number of instructions.
func (p *Program) Len() int { return len(p.insns) }
