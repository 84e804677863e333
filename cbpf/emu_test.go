package cbpf

import (
	"encoding/binary"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

func words(vals ...uint32) *Words {
	var w Words
	copy(w[:], vals)
	return &w
}

// Every instruction's semantics, each as a tiny program whose RET A shows
// the result.
func TestRunSemantics(t *testing.T) {
	w := words(0x11111111, 0x22222222, 0x00030201, 3, 0x80000000, 5, 6, 7, 8, 0xffffffff)
	tests := []struct {
		name string
		prog []Instruction
		want uint32
	}{
		{"A starts at 0", []Instruction{RetAcc()}, 0},
		{"X starts at 0", []Instruction{TXA(), RetAcc()}, 0},
		{"ret k", []Instruction{Ret(42)}, 42},
		{"ld word 0", []Instruction{LoadAbs(0), RetAcc()}, 0x11111111},
		{"ld word 36", []Instruction{LoadAbs(36), RetAcc()}, 0xffffffff},
		{"ld word 8", []Instruction{LoadAbs(8), RetAcc()}, 0x00030201},
		{"ld len", []Instruction{LoadLen(), RetAcc()}, 40},
		{"ldx len", []Instruction{LoadXLen(), TXA(), RetAcc()}, 40},
		{"ld imm", []Instruction{LoadImm(7), RetAcc()}, 7},
		{"ldx imm + txa", []Instruction{LoadXImm(9), TXA(), RetAcc()}, 9},
		{"tax", []Instruction{LoadImm(5), TAX(), LoadImm(0), TXA(), RetAcc()}, 5},
		{"st/ld mem", []Instruction{LoadImm(3), Store(4), LoadImm(0), LoadMem(4), RetAcc()}, 3},
		{"stx/ldx mem", []Instruction{LoadXImm(6), StoreX(15), LoadXImm(0), LoadXMem(15), TXA(), RetAcc()}, 6},
		{"add wraps", []Instruction{LoadImm(0xffffffff), ALUK(AluAdd, 2), RetAcc()}, 1},
		{"add x", []Instruction{LoadImm(1), LoadXImm(2), ALUX(AluAdd), RetAcc()}, 3},
		{"sub wraps", []Instruction{LoadImm(1), ALUK(AluSub, 2), RetAcc()}, 0xffffffff},
		{"sub x", []Instruction{LoadImm(5), LoadXImm(2), ALUX(AluSub), RetAcc()}, 3},
		{"mul wraps", []Instruction{LoadImm(0x10000), ALUK(AluMul, 0x10001), RetAcc()}, 0x10000},
		{"mul x", []Instruction{LoadImm(3), LoadXImm(4), ALUX(AluMul), RetAcc()}, 12},
		{"div k", []Instruction{LoadImm(7), ALUK(AluDiv, 2), RetAcc()}, 3},
		{"div unsigned", []Instruction{LoadImm(0x80000000), ALUK(AluDiv, 2), RetAcc()}, 0x40000000},
		{"div x", []Instruction{LoadImm(9), LoadXImm(3), ALUX(AluDiv), RetAcc()}, 3},
		{"div by X=0 returns 0", []Instruction{LoadImm(9), ALUX(AluDiv), Ret(1)}, 0},
		{"and", []Instruction{LoadImm(0xff0f), ALUK(AluAnd, 0x0ff0), RetAcc()}, 0x0f00},
		{"and x", []Instruction{LoadImm(6), LoadXImm(3), ALUX(AluAnd), RetAcc()}, 2},
		{"or", []Instruction{LoadImm(0xf0), ALUK(AluOr, 0x0f), RetAcc()}, 0xff},
		{"or x", []Instruction{LoadImm(4), LoadXImm(1), ALUX(AluOr), RetAcc()}, 5},
		{"xor", []Instruction{LoadImm(0xff), ALUK(AluXor, 0x0f), RetAcc()}, 0xf0},
		{"xor x", []Instruction{LoadImm(5), LoadXImm(1), ALUX(AluXor), RetAcc()}, 4},
		{"lsh", []Instruction{LoadImm(1), ALUK(AluLsh, 31), RetAcc()}, 0x80000000},
		{"lsh x uses low 5 bits", []Instruction{LoadImm(1), LoadXImm(33), ALUX(AluLsh), RetAcc()}, 2},
		{"rsh", []Instruction{LoadImm(0x80000000), ALUK(AluRsh, 31), RetAcc()}, 1},
		{"rsh x uses low 5 bits", []Instruction{LoadImm(8), LoadXImm(35), ALUX(AluRsh), RetAcc()}, 1},
		{"rsh is logical", []Instruction{LoadAbs(36), ALUK(AluRsh, 28), RetAcc()}, 0xf},
		{"neg", []Instruction{LoadImm(1), Neg(), RetAcc()}, 0xffffffff},
		{"ja", []Instruction{Jump(1), Ret(0), Ret(7)}, 7},
		{"jeq k true", []Instruction{LoadImm(3), JumpIf(JmpJEQ, 3, 0, 1), Ret(1), Ret(2)}, 1},
		{"jeq k false", []Instruction{LoadImm(4), JumpIf(JmpJEQ, 3, 0, 1), Ret(1), Ret(2)}, 2},
		{"jeq x", []Instruction{LoadImm(4), LoadXImm(4), JumpIfX(JmpJEQ, 0, 1), Ret(1), Ret(2)}, 1},
		{"jgt k unsigned", []Instruction{LoadAbs(16), JumpIf(JmpJGT, 0x7fffffff, 0, 1), Ret(1), Ret(2)}, 1},
		{"jgt k equal is false", []Instruction{LoadImm(5), JumpIf(JmpJGT, 5, 0, 1), Ret(1), Ret(2)}, 2},
		{"jgt k high constant", []Instruction{LoadAbs(36), JumpIf(JmpJGT, 0x80000000, 0, 1), Ret(1), Ret(2)}, 1},
		{"jgt x", []Instruction{LoadImm(6), LoadXImm(5), JumpIfX(JmpJGT, 0, 1), Ret(1), Ret(2)}, 1},
		{"jge k equal", []Instruction{LoadImm(5), JumpIf(JmpJGE, 5, 0, 1), Ret(1), Ret(2)}, 1},
		{"jge k less", []Instruction{LoadImm(4), JumpIf(JmpJGE, 5, 0, 1), Ret(1), Ret(2)}, 2},
		{"jge x", []Instruction{LoadImm(4), LoadXImm(5), JumpIfX(JmpJGE, 0, 1), Ret(1), Ret(2)}, 2},
		{"jset k", []Instruction{LoadImm(6), JumpIf(JmpJSET, 2, 0, 1), Ret(1), Ret(2)}, 1},
		{"jset k none", []Instruction{LoadImm(6), JumpIf(JmpJSET, 1, 0, 1), Ret(1), Ret(2)}, 2},
		{"jset x", []Instruction{LoadImm(6), LoadXImm(8), JumpIfX(JmpJSET, 0, 1), Ret(1), Ret(2)}, 2},
		{"ret a after ops", []Instruction{LoadAbs(12), ALUK(AluAdd, 1), RetAcc()}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Check(tt.prog)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := p.Run(w); got != tt.want {
				t.Errorf("Run = %#x, want %#x", got, tt.want)
			}
			ret, path := p.Trace(w)
			if ret != tt.want {
				t.Errorf("Trace = %#x, want %#x", ret, tt.want)
			}
			if len(path) == 0 || path[0] != 0 || !tt.prog[path[len(path)-1]].IsReturn() && tt.want != 0 {
				t.Errorf("path %v does not start at 0 and end on a RET", path)
			}
		})
	}
}

func TestTracePath(t *testing.T) {
	p := MustCheck([]Instruction{LoadImm(4), JumpIf(JmpJEQ, 3, 0, 1), Ret(1), Ret(2)})
	_, path := p.Trace(words())
	want := []int{0, 1, 3}
	if len(path) != len(want) {
		t.Fatalf("path = %v, want %v", path, want)
	}
	for i := range want {
		if path[i] != want[i] {
			t.Fatalf("path = %v, want %v", path, want)
		}
	}
}

func TestWordsOfByteOrder(t *testing.T) {
	var c abi.Ctx
	c.Opcode, c.SQEFlags, c.PDUSize = 45, 0x10, 12
	c.UserData = 0x0102030405060708
	le := WordsOf(c.Encode(binary.LittleEndian), binary.LittleEndian)
	if le[2] != 0x000c102d || le[0] != 0x05060708 || le[1] != 0x01020304 {
		t.Errorf("little-endian words = %#x", le[:3])
	}
	be := WordsOf(c.Encode(binary.BigEndian), binary.BigEndian)
	if be[2] != 0x2d100c00 || be[0] != 0x01020304 || be[1] != 0x05060708 {
		t.Errorf("big-endian words = %#x", be[:3])
	}
}

func TestEncodeDecode(t *testing.T) {
	prog := []Instruction{LoadAbs(16), JumpIf(JmpJEQ, 2, 1, 0), Ret(0), Ret(0xffffffff)}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		b := Encode(prog, bo)
		if len(b) != 8*len(prog) {
			t.Fatalf("len = %d", len(b))
		}
		got, err := Decode(b, bo)
		if err != nil {
			t.Fatal(err)
		}
		for i := range prog {
			if got[i] != prog[i] {
				t.Fatalf("%v: insn %d = %v, want %v", bo, i, got[i], prog[i])
			}
		}
	}
	if b := Encode(prog[:1], binary.LittleEndian); b[0] != 0x20 || b[4] != 16 {
		t.Errorf("little-endian sock_filter = % x", b)
	}
	if _, err := Decode(make([]byte, 7), binary.LittleEndian); err == nil {
		t.Error("Decode accepted 7 bytes")
	}
}

// Fused jeq runs must behave exactly like the instructions they replace,
// including jumps into the middle of a run and the recorded path.
func TestJEQRunFusion(t *testing.T) {
	// 0: ld [0]; 1: jeq #5 -> 3 (into the run); 2..7: jeq #10..#15 -> 9; 8: ret #0; 9: ret #1
	prog := []Instruction{LoadAbs(0), JumpIf(JmpJEQ, 5, 1, 0)}
	for v := uint32(10); v < 16; v++ {
		prog = append(prog, JumpIf(JmpJEQ, v, uint8(8-len(prog)), 0))
	}
	prog = append(prog, Ret(0), Ret(1))
	p := MustCheck(prog)
	if p.code[1].kind != opJEQRun {
		t.Fatalf("run not fused: kind %d", p.code[1].kind)
	}
	for a := uint32(0); a < 20; a++ {
		// A=5 jumps to instruction 3, which tests 11..15: a deny.
		want := uint32(0)
		if a >= 10 && a < 16 {
			want = 1
		}
		ret, path := p.Trace(words(a))
		if ret != want || p.Run(words(a)) != want {
			t.Errorf("A=%d: ret %d, want %d", a, ret, want)
		}
		// The path must be what one-at-a-time execution visits.
		var slow []int
		for pc := 0; ; {
			slow = append(slow, pc)
			in := prog[pc]
			if in.IsReturn() {
				break
			}
			switch {
			case in.Op == ClassLD|ModeABS:
				pc++
			case a == in.K:
				pc += 1 + int(in.Jt)
			default:
				pc += 1 + int(in.Jf)
			}
		}
		if len(slow) != len(path) {
			t.Fatalf("A=%d: path %v, want %v", a, path, slow)
		}
		for i := range slow {
			if slow[i] != path[i] {
				t.Fatalf("A=%d: path %v, want %v", a, path, slow)
			}
		}
	}
}
