// Package cbpf is classic BPF as io_uring filters use it: the instruction
// type, raw encoding to the kernel's struct sock_filter, a checker that
// accepts exactly what Linux 7.x accepts for io_uring filters, and an
// emulator that runs a checked program on a context as the kernel does.
//
// An Instruction is the raw kernel struct, so any 8 bytes can be
// represented, including codes the kernel rejects; Check turns a []Instruction
// into a *Program, which is known valid and is the only thing Run accepts.
package cbpf

import (
	"encoding/binary"
	"fmt"
)

// Instruction is one classic BPF instruction, struct sock_filter:
//
//	code u16 | jt u8 | jf u8 | k u32
//
// The code's low three bits are the class; the rest depends on the class:
//
//	LD/LDX:  size (0x18) | mode (0xe0)
//	ALU/JMP: op (0xf0) | source (0x08)
//	RET:     return source (0x18)
//	MISC:    misc op (0xf8)
type Instruction struct {
	Op uint16 // the instruction code
	Jt uint8  // conditional jump offset when the test is true
	Jf uint8  // conditional jump offset when the test is false
	K  uint32 // the constant operand
}

// Classes (code & 0x07).
const (
	ClassLD   = 0x00
	ClassLDX  = 0x01
	ClassST   = 0x02
	ClassSTX  = 0x03
	ClassALU  = 0x04
	ClassJMP  = 0x05
	ClassRET  = 0x06
	ClassMISC = 0x07
)

// Load sizes (code & 0x18) and modes (code & 0xe0).
const (
	SizeW   = 0x00
	SizeH   = 0x08
	SizeB   = 0x10
	ModeIMM = 0x00
	ModeABS = 0x20
	ModeIND = 0x40
	ModeMEM = 0x60
	ModeLEN = 0x80
	ModeMSH = 0xa0
)

// ALU operations (code & 0xf0).
const (
	AluAdd = 0x00
	AluSub = 0x10
	AluMul = 0x20
	AluDiv = 0x30
	AluOr  = 0x40
	AluAnd = 0x50
	AluLsh = 0x60
	AluRsh = 0x70
	AluNeg = 0x80
	AluMod = 0x90
	AluXor = 0xa0
)

// Jump operations (code & 0xf0).
const (
	JmpJA   = 0x00
	JmpJEQ  = 0x10
	JmpJGT  = 0x20
	JmpJGE  = 0x30
	JmpJSET = 0x40
)

// Operand sources (code & 0x08) for ALU and JMP, and return sources
// (code & 0x18) for RET.
const (
	SrcK = 0x00
	SrcX = 0x08
	RetK = 0x00
	RetX = 0x08
	RetA = 0x10
)

// MISC operations (code & 0xf8).
const (
	MiscTAX = 0x00
	MiscTXA = 0x80
)

// MemWords is the number of scratch memory cells, BPF_MEMWORDS.
const MemWords = 16

// MaxInstructions is the largest program the kernel accepts, BPF_MAXINSNS.
const MaxInstructions = 4096

// Class returns the instruction's class (code & 0x07).
func (i Instruction) Class() uint16 { return i.Op & 0x07 }

// IsJump reports whether i is a JMP-class instruction.
func (i Instruction) IsJump() bool { return i.Class() == ClassJMP }

// IsConditionalJump reports whether i is a JMP other than JA.
func (i Instruction) IsConditionalJump() bool { return i.IsJump() && i.Op&0xf0 != JmpJA }

// IsReturn reports whether i is a RET-class instruction.
func (i Instruction) IsReturn() bool { return i.Class() == ClassRET }

// Constructors for the instructions io_uring filters may use. They exist so
// that code building programs reads like assembly.

// LoadAbs loads the 32-bit context word at offset off into A.
func LoadAbs(off uint32) Instruction { return Instruction{Op: ClassLD | SizeW | ModeABS, K: off} }

// LoadLen loads the context length (40) into A.
func LoadLen() Instruction { return Instruction{Op: ClassLD | SizeW | ModeLEN} }

// LoadImm loads constant k into A.
func LoadImm(k uint32) Instruction { return Instruction{Op: ClassLD | ModeIMM, K: k} }

// LoadMem loads scratch cell k into A.
func LoadMem(k uint32) Instruction { return Instruction{Op: ClassLD | ModeMEM, K: k} }

// LoadXImm loads constant k into X.
func LoadXImm(k uint32) Instruction { return Instruction{Op: ClassLDX | SizeW | ModeIMM, K: k} }

// LoadXMem loads scratch cell k into X.
func LoadXMem(k uint32) Instruction { return Instruction{Op: ClassLDX | SizeW | ModeMEM, K: k} }

// LoadXLen loads the context length (40) into X.
func LoadXLen() Instruction { return Instruction{Op: ClassLDX | SizeW | ModeLEN} }

// Store stores A into scratch cell k.
func Store(k uint32) Instruction { return Instruction{Op: ClassST, K: k} }

// StoreX stores X into scratch cell k.
func StoreX(k uint32) Instruction { return Instruction{Op: ClassSTX, K: k} }

// ALUK applies ALU operation op (AluAdd ...) to A and constant k.
func ALUK(op uint16, k uint32) Instruction { return Instruction{Op: ClassALU | op | SrcK, K: k} }

// ALUX applies ALU operation op to A and X.
func ALUX(op uint16) Instruction { return Instruction{Op: ClassALU | op | SrcX} }

// Neg negates A.
func Neg() Instruction { return Instruction{Op: ClassALU | AluNeg} }

// Jump jumps forward k instructions unconditionally.
func Jump(k uint32) Instruction { return Instruction{Op: ClassJMP | JmpJA, K: k} }

// JumpIf compares A with constant k using op (JmpJEQ ...) and skips jt
// instructions if true, jf if false.
func JumpIf(op uint16, k uint32, jt, jf uint8) Instruction {
	return Instruction{Op: ClassJMP | op | SrcK, Jt: jt, Jf: jf, K: k}
}

// JumpIfX compares A with X using op and skips jt or jf instructions.
func JumpIfX(op uint16, jt, jf uint8) Instruction {
	return Instruction{Op: ClassJMP | op | SrcX, Jt: jt, Jf: jf}
}

// Ret returns constant k: 0 denies the request, anything else allows it.
func Ret(k uint32) Instruction { return Instruction{Op: ClassRET | RetK, K: k} }

// RetAcc returns A.
func RetAcc() Instruction { return Instruction{Op: ClassRET | RetA} }

// TAX copies A into X.
func TAX() Instruction { return Instruction{Op: ClassMISC | MiscTAX} }

// TXA copies X into A.
func TXA() Instruction { return Instruction{Op: ClassMISC | MiscTXA} }

// String returns the instruction as raw numbers, "{0x20, 0, 0, 0x10}".
// Use package asm for readable text.
func (i Instruction) String() string {
	return fmt.Sprintf("{%#x, %d, %d, %#x}", i.Op, i.Jt, i.Jf, i.K)
}

// Encode returns prog as an array of struct sock_filter in byte order bo.
func Encode(prog []Instruction, bo binary.ByteOrder) []byte {
	b := make([]byte, 8*len(prog))
	for n, in := range prog {
		bo.PutUint16(b[8*n:], in.Op)
		b[8*n+2] = in.Jt
		b[8*n+3] = in.Jf
		bo.PutUint32(b[8*n+4:], in.K)
	}
	return b
}

// Decode reads an array of struct sock_filter in byte order bo. It fails if
// len(b) is not a multiple of 8; it does not check the program.
func Decode(b []byte, bo binary.ByteOrder) ([]Instruction, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("raw program is %d bytes, not a multiple of 8 (the size of struct sock_filter)", len(b))
	}
	prog := make([]Instruction, len(b)/8)
	for n := range prog {
		prog[n] = Instruction{
			Op: bo.Uint16(b[8*n:]),
			Jt: b[8*n+2],
			Jf: b[8*n+3],
			K:  bo.Uint32(b[8*n+4:]),
		}
	}
	return prog, nil
}
