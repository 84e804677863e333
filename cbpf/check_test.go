package cbpf

import (
	"errors"
	"strings"
	"testing"
)

// Each checker rule has an accepted and a rejected case. want is "" for
// accepted programs and a fragment of the reason otherwise.
func TestCheckRules(t *testing.T) {
	ret1 := Ret(1)
	long := make([]Instruction, MaxInstructions)
	for i := range long {
		long[i] = Ret(1)
	}
	tooLong := append(append([]Instruction(nil), long...), Ret(1))
	tests := []struct {
		name   string
		prog   []Instruction
		wantPC int
		want   string
	}{
		{"one ret", []Instruction{ret1}, 0, ""},
		{"empty", nil, -1, "empty"},
		{"max length", long, 0, ""},
		{"too long", tooLong, -1, "at most 4096"},
		{"unknown code", []Instruction{{Op: 0xff}, ret1}, 0, "unknown instruction code"},
		{"ret x is not a classic code", []Instruction{{Op: ClassRET | RetX}}, 0, "unknown instruction code"},
		{"ld b imm unknown", []Instruction{{Op: ClassLD | SizeB | ModeIMM}, ret1}, 0, "unknown instruction code"},
		{"div by nonzero constant", []Instruction{ALUK(AluDiv, 3), ret1}, 0, ""},
		{"div by constant 0", []Instruction{ALUK(AluDiv, 0), ret1}, 0, "division by the constant 0"},
		{"mod by constant 0 (classic rule first)", []Instruction{ALUK(AluMod, 0), ret1}, 0, "division by the constant 0"},
		{"div by x", []Instruction{ALUX(AluDiv), ret1}, 0, ""},
		{"lsh 31", []Instruction{ALUK(AluLsh, 31), ret1}, 0, ""},
		{"lsh 32", []Instruction{ALUK(AluLsh, 32), ret1}, 0, "shift by 32"},
		{"rsh 32", []Instruction{ALUK(AluRsh, 32), ret1}, 0, "shift by 32"},
		{"store M[15]", []Instruction{Store(15), ret1}, 0, ""},
		{"store M[16]", []Instruction{Store(16), ret1}, 0, "M[16] does not exist"},
		{"stx M[16]", []Instruction{StoreX(16), ret1}, 0, "M[16] does not exist"},
		{"ld M[16]", []Instruction{LoadMem(16), ret1}, 0, "M[16] does not exist"},
		{"ldx M[16]", []Instruction{LoadXMem(16), ret1}, 0, "M[16] does not exist"},
		{"ja in range", []Instruction{Jump(1), Ret(0), ret1}, 0, ""},
		{"ja to end", []Instruction{Jump(2), Ret(0), ret1}, 0, "past the end"},
		{"ja as last", []Instruction{ret1, Jump(0)}, 1, "past the end"},
		{"jeq in range", []Instruction{JumpIf(JmpJEQ, 1, 0, 1), Ret(0), ret1}, 0, ""},
		{"jeq jt out", []Instruction{JumpIf(JmpJEQ, 1, 2, 0), Ret(0), ret1}, 0, "past the end"},
		{"jset jf out", []Instruction{JumpIf(JmpJSET, 1, 0, 2), Ret(0), ret1}, 0, "past the end"},
		{"jgt x jt out", []Instruction{JumpIfX(JmpJGT, 1, 0), ret1}, 0, "past the end"},
		{"last not ret", []Instruction{ret1, LoadImm(1)}, 1, "last instruction must be a RET"},
		{"ret a last", []Instruction{LoadImm(1), RetAcc()}, 0, ""},
		{"scratch stored then loaded", []Instruction{Store(2), LoadMem(2), ret1}, 0, ""},
		{"scratch load before store", []Instruction{LoadMem(2), ret1}, 0, "before a store"},
		{"ldx scratch load before store", []Instruction{LoadXMem(2), ret1}, 0, "before a store"},
		{"scratch stored on one branch only", []Instruction{
			JumpIf(JmpJEQ, 0, 0, 1), Store(1), LoadMem(1), ret1}, 2, "before a store"},
		{"scratch stored on both branches", []Instruction{
			JumpIf(JmpJEQ, 0, 0, 2), Store(1), Jump(1), Store(1), LoadMem(1), ret1}, 0, ""},
		{"scratch: RET does not reset", []Instruction{Store(3), Ret(0), LoadMem(3), ret1}, 0, ""},
		{"scratch: ja makes the fallthrough full", []Instruction{Jump(1), LoadMem(4), ret1}, 0, ""},
		// io_uring rules.
		{"ld word 0", []Instruction{LoadAbs(0), ret1}, 0, ""},
		{"ld word 36", []Instruction{LoadAbs(36), ret1}, 0, ""},
		{"ld word 40", []Instruction{LoadAbs(40), ret1}, 0, "4-byte aligned words"},
		{"ld unaligned", []Instruction{LoadAbs(2), ret1}, 0, "4-byte aligned words"},
		{"ld half", []Instruction{{Op: ClassLD | SizeH | ModeABS, K: 8}, ret1}, 0, "whole 32-bit words"},
		{"ld byte", []Instruction{{Op: ClassLD | SizeB | ModeABS, K: 8}, ret1}, 0, "whole 32-bit words"},
		{"ld ind", []Instruction{{Op: ClassLD | SizeW | ModeIND, K: 0}, ret1}, 0, "indirect loads"},
		{"ldx msh", []Instruction{{Op: ClassLDX | SizeB | ModeMSH, K: 0}, ret1}, 0, "header length"},
		{"mod", []Instruction{ALUK(AluMod, 3), ret1}, 0, "mod is not allowed"},
		{"mod x", []Instruction{ALUX(AluMod), ret1}, 0, "mod is not allowed"},
		{"ancillary known by classic, refused by io_uring", []Instruction{LoadAbs(0xfffff000), ret1}, 0, "4-byte aligned"},
		{"ancillary unknown", []Instruction{LoadAbs(0xfffff000 + 68), ret1}, 0, "unknown ancillary"},
		{"ld len", []Instruction{LoadLen(), RetAcc()}, 0, ""},
		{"ldx len", []Instruction{LoadXLen(), TXA(), RetAcc()}, 0, ""},
		{"all alu ok", []Instruction{ALUK(AluAdd, 1), ALUX(AluSub), ALUK(AluMul, 2), ALUX(AluOr),
			ALUK(AluAnd, 3), ALUX(AluXor), ALUK(AluLsh, 1), ALUX(AluRsh), Neg(), TAX(), TXA(), RetAcc()}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Check(tt.prog)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check rejected a valid program: %v", err)
				}
				if p.Len() != len(tt.prog) {
					t.Fatalf("Len = %d, want %d", p.Len(), len(tt.prog))
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted a program the kernel rejects (want %q)", tt.want)
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CheckError", err)
			}
			if ce.PC != tt.wantPC {
				t.Errorf("PC = %d, want %d (%v)", ce.PC, tt.wantPC, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestCheckCopiesInput(t *testing.T) {
	prog := []Instruction{Ret(1)}
	p := MustCheck(prog)
	prog[0] = Ret(0)
	if got := p.Instructions()[0]; got != Ret(1) {
		t.Fatalf("Program shares memory with its input: %v", got)
	}
}

func TestCheckClassicAcceptsWhatIOURingRefuses(t *testing.T) {
	prog := []Instruction{{Op: ClassLD | SizeB | ModeABS, K: 8}, ALUK(AluMod, 7), RetAcc()}
	if err := CheckClassic(prog); err != nil {
		t.Fatalf("CheckClassic: %v", err)
	}
	if _, err := Check(prog); err == nil {
		t.Fatal("Check accepted a byte load")
	}
}
