// Package asm is the text form of io_uring filters: an assembler and a
// disassembler for classic BPF programs that name the fields of the filter
// context (ld [socket.family], ld [open.flags.lo]), use labels instead of
// counted jump offsets, and write constants by name (jeq #AF_INET, ok).
// docs/asm.md is the syntax reference.
//
// The two are exact inverses: Assemble(Disassemble(p)) == p for every
// program p, valid or not; instructions without a mnemonic are written as
// raw ".insn" directives. The assembler lowers conditional jumps whose
// targets are more than 255 instructions away into jumps over a 32-bit
// "ja". It does not judge programs: cbpf.Check does.
//
// The package also reads and writes programs as JSON, C and Go literals
// and raw struct sock_filter bytes (Marshal, Unmarshal), and detects which
// of those a file holds (ParseAny).
package asm
