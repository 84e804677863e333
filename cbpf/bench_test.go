package cbpf

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// benchPrograms are the programs of the emulator benchmark: a one-
// instruction allow, a 20-instruction socket filter, and a 200-instruction
// chain of comparisons that runs to its end.
func benchPrograms() map[string][]Instruction {
	socket := []Instruction{
		LoadAbs(8), ALUK(AluAnd, 0xff), JumpIf(JmpJEQ, 45, 0, 16), // opcode == SOCKET
		LoadAbs(16), JumpIf(JmpJEQ, 2, 1, 0), JumpIf(JmpJEQ, 10, 0, 12), // family INET/INET6
		LoadAbs(20), ALUK(AluAnd, 0xf), JumpIf(JmpJEQ, 1, 1, 0), JumpIf(JmpJEQ, 2, 0, 8), // stream/dgram
		LoadAbs(24), JumpIf(JmpJEQ, 0, 3, 0), JumpIf(JmpJEQ, 6, 2, 0), JumpIf(JmpJEQ, 17, 1, 0),
		Ret(0), LoadAbs(0), JumpIf(JmpJGE, 0x1000, 0, 1), Ret(1), Ret(1), Ret(0),
	}
	// A set-membership chain: ld, 197 jeq that all miss, ret #0, and
	// the ret #1 every jeq targets.
	chain := []Instruction{LoadAbs(0)}
	for i := 0; len(chain) < 198; i++ {
		chain = append(chain, JumpIf(JmpJEQ, uint32(1000+i), uint8(198-len(chain)), 0))
	}
	chain = append(chain, Ret(0), Ret(1))
	return map[string][]Instruction{
		"allow1":   {Ret(1)},
		"socket20": socket,
		"chain200": chain,
	}
}

func benchCtx() [40]byte {
	var c [40]byte
	c[8] = 45
	binary.LittleEndian.PutUint32(c[16:], 10)
	binary.LittleEndian.PutUint32(c[20:], 1)
	binary.LittleEndian.PutUint32(c[24:], 6)
	binary.LittleEndian.PutUint32(c[0:], 0x2000)
	return c
}

func TestBenchProgramsValid(t *testing.T) {
	want := map[string]int{"allow1": 1, "socket20": 20, "chain200": 200}
	for name, prog := range benchPrograms() {
		if len(prog) != want[name] {
			t.Errorf("%s has %d instructions, want %d", name, len(prog), want[name])
		}
		p, err := Check(prog)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vm := xnetVM(t, prog)
		c := benchCtx()
		w := WordsOf(c, binary.LittleEndian)
		pkt := xnetPacket(c)
		got, err := vm.Run(pkt[:])
		if err != nil {
			t.Fatal(err)
		}
		if (got != 0) != p.Allows(&w) {
			t.Errorf("%s: x/net/bpf says %d, emulator %d", name, got, p.Run(&w))
		}
	}
}

// xnetPacket re-encodes a little-endian context so that x/net/bpf, whose
// loads are big-endian, sees the same words and takes the same path.
func xnetPacket(c [40]byte) [40]byte {
	w := WordsOf(c, binary.LittleEndian)
	var pkt [40]byte
	for i, v := range w {
		binary.BigEndian.PutUint32(pkt[4*i:], v)
	}
	return pkt
}

func xnetVM(tb testing.TB, prog []Instruction) *bpf.VM {
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		tb.Fatal("x/net/bpf cannot disassemble the program")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		tb.Fatal(err)
	}
	return vm
}

// BenchmarkEmulator runs each program on ringfence's emulator and on
// golang.org/x/net/bpf's VM side by side; compare with benchstat or read
// the ns/op pairs.
func BenchmarkEmulator(b *testing.B) {
	for _, name := range []string{"allow1", "socket20", "chain200"} {
		prog := benchPrograms()[name]
		c := benchCtx()
		b.Run(name+"/ringfence", func(b *testing.B) {
			p := MustCheck(prog)
			w := WordsOf(c, binary.LittleEndian)
			for b.Loop() {
				p.Run(&w)
			}
		})
		b.Run(name+"/xnetbpf", func(b *testing.B) {
			vm := xnetVM(b, prog)
			pkt := xnetPacket(c)
			for b.Loop() {
				vm.Run(pkt[:])
			}
		})
	}
}
