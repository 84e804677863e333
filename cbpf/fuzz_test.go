package cbpf

import (
	"encoding/binary"
	"testing"
)

// FuzzCheckRun feeds arbitrary bytes to Decode and Check, and runs every
// accepted program on an arbitrary context. Nothing may panic, and every
// accepted program must end on a RET (or on a DIV by X with X = 0, which
// the kernel turns into "return 0").
func FuzzCheckRun(f *testing.F) {
	f.Add(Encode([]Instruction{LoadAbs(16), JumpIf(JmpJEQ, 2, 0, 1), Ret(1), Ret(0)}, binary.LittleEndian), make([]byte, 40))
	f.Add(Encode([]Instruction{Store(1), LoadMem(1), ALUX(AluDiv), RetAcc()}, binary.LittleEndian), make([]byte, 40))
	f.Add(Encode([]Instruction{LoadXImm(40), ALUX(AluLsh), Jump(0), RetAcc()}, binary.LittleEndian), []byte{1, 2, 3})
	f.Add(Encode([]Instruction{LoadAbs(0), JumpIf(JmpJEQ, 0, 3, 0), JumpIf(JmpJEQ, 1, 2, 0),
		JumpIf(JmpJEQ, 2, 1, 0), Ret(0), Ret(1)}, binary.LittleEndian), []byte{2})
	f.Fuzz(func(t *testing.T, raw []byte, ctx []byte) {
		prog, err := Decode(raw[:len(raw)/8*8], binary.LittleEndian)
		if err != nil {
			t.Fatalf("Decode of a multiple of 8 bytes failed: %v", err)
		}
		p, err := Check(prog)
		if err != nil {
			if _, ok := err.(*CheckError); !ok {
				t.Fatalf("error %T is not a *CheckError", err)
			}
			return
		}
		var c [40]byte
		copy(c[:], ctx)
		w := WordsOf(c, binary.LittleEndian)
		ret, path := p.Trace(&w)
		if ret != p.Run(&w) {
			t.Fatal("Run and Trace disagree")
		}
		if want := refRun(prog, &w); ret != want {
			t.Fatalf("emulator returned %#x, the reference interpreter %#x", ret, want)
		}
		last := prog[path[len(path)-1]]
		if !last.IsReturn() && !(last.Op == ClassALU|AluDiv|SrcX && ret == 0) {
			t.Fatalf("run ended at %v, not a RET", last)
		}
		for i := 1; i < len(path); i++ {
			if path[i] <= path[i-1] {
				t.Fatalf("path goes backwards: %v", path)
			}
		}
	})
}

// refRun is a deliberately naive interpreter, written straight from the
// instruction fields, that the fuzz target compares the emulator with.
func refRun(prog []Instruction, w *Words) uint32 {
	var a, x uint32
	var m [MemWords]uint32
	for pc := 0; ; pc++ {
		in := prog[pc]
		src := in.K
		if in.Op&SrcX != 0 {
			src = x
		}
		switch in.Class() {
		case ClassLD:
			switch in.Op &^ 7 {
			case ModeABS:
				a = w[in.K/4]
			case ModeLEN:
				a = 40
			case ModeIMM:
				a = in.K
			case ModeMEM:
				a = m[in.K]
			}
		case ClassLDX:
			switch in.Op &^ 7 {
			case ModeLEN:
				x = 40
			case ModeIMM:
				x = in.K
			case ModeMEM:
				x = m[in.K]
			}
		case ClassST:
			m[in.K] = a
		case ClassSTX:
			m[in.K] = x
		case ClassALU:
			switch in.Op & 0xf0 {
			case AluAdd:
				a += src
			case AluSub:
				a -= src
			case AluMul:
				a *= src
			case AluDiv:
				if src == 0 {
					return 0
				}
				a /= src
			case AluAnd:
				a &= src
			case AluOr:
				a |= src
			case AluXor:
				a ^= src
			case AluLsh:
				a <<= src % 32
			case AluRsh:
				a >>= src % 32
			case AluNeg:
				a = 0 - a
			}
		case ClassJMP:
			var cond bool
			switch in.Op & 0xf0 {
			case JmpJA:
				pc += int(in.K)
				continue
			case JmpJEQ:
				cond = a == src
			case JmpJGT:
				cond = a > src
			case JmpJGE:
				cond = a >= src
			case JmpJSET:
				cond = a&src != 0
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case ClassRET:
			if in.Op&RetA != 0 {
				return a
			}
			return in.K
		case ClassMISC:
			if in.Op&MiscTXA != 0 {
				a = x
			} else {
				x = a
			}
		}
	}
}
