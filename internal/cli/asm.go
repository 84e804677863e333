package cli

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
)

// parseEndian parses --endian: "" (unset), little or big.
func parseEndian(s string) (binary.ByteOrder, error) {
	switch strings.ToLower(s) {
	case "":
		return nil, nil
	case "little", "le":
		return binary.LittleEndian, nil
	case "big", "be":
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("unknown byte order %q: want little or big", s)
}

// loadedProgram is a program read by asm, disasm or emu, with what its
// source said about itself.
type loadedProgram struct {
	name  string
	insns []cbpf.Instruction
	pos   []asm.Pos // source positions when read from assembly
	bo    binary.ByteOrder
	view  abi.View
}

// loadProgram reads a program in format f ("auto" detects it). bo, if not
// nil, is the byte order of raw input and overrides assembly's .endian.
func loadProgram(e *env, path, f string, bo binary.ByteOrder) (*loadedProgram, error) {
	data, name, err := e.readInput(path)
	if err != nil {
		return nil, err
	}
	lp := &loadedProgram{name: name, bo: bo}
	var format asm.Format
	if f == "" || f == "auto" {
		if len(data) == 0 {
			return nil, fmt.Errorf("%s: empty input: no program", name)
		}
		format = asm.Detect(data)
	} else if format, err = asm.ParseFormat(f); err != nil {
		return nil, err
	}
	if format == asm.FormatAsm {
		o, err := asm.AssembleFile(data, name)
		if err != nil {
			return nil, err
		}
		lp.insns, lp.pos, lp.view = o.Insns, o.Pos, o.View
		if lp.bo == nil {
			lp.bo = o.ByteOrder
		}
		return lp, nil
	}
	if lp.insns, err = asm.Unmarshal(data, format, bo); err != nil {
		return nil, fmt.Errorf("%s: %v (read as %s)", name, err, format)
	}
	return lp, nil
}

// order returns the program's byte order, little-endian by default.
func (lp *loadedProgram) order() binary.ByteOrder {
	if lp.bo == nil {
		return binary.LittleEndian
	}
	return lp.bo
}

// check runs the checker and describes a rejection, at the source line
// when the program came from assembly.
func (lp *loadedProgram) check() (*cbpf.Program, error) {
	p, err := cbpf.Check(lp.insns)
	if err == nil {
		return p, nil
	}
	var ce *cbpf.CheckError
	if !errors.As(err, &ce) || ce.PC < 0 || ce.PC >= len(lp.insns) {
		return nil, fmt.Errorf("%s: the kernel would reject this program: %v", lp.name, err)
	}
	text := asm.Lines(lp.insns, asm.Options{ByteOrder: lp.bo, View: lp.view})[ce.PC]
	where := lp.name
	if ce.PC < len(lp.pos) {
		where = fmt.Sprintf("%s:%d:%d", lp.name, lp.pos[ce.PC].Line, lp.pos[ce.PC].Col)
	}
	return nil, fmt.Errorf("%s: the kernel would reject instruction %d (%s): %s", where, ce.PC, text, ce.Reason)
}

// asmCommand is "ringfence asm".
func asmCommand() *command {
	return &command{
		name:    "asm",
		args:    "FILE",
		summary: "assemble a classic-BPF filter and check it",
		help: `Assembles FILE (docs/asm.md; "-" reads standard input), checks the program
against the rules Linux applies to io_uring filters, and prints it as a JSON
array of [code, jt, jf, k], a C struct sock_filter array, a Go
[]cbpf.Instruction literal, raw struct sock_filter bytes (in the byte order
the file declares with .endian, little-endian by default), or canonical
assembly.

Exit status: 0 assembled and accepted, 1 the checker rejects the program,
2 bad usage or an assembly error.`,
		setup: func(fs *flag.FlagSet) action {
			format := fs.String("format", "json", "output `FORMAT`: json, c, go, raw or asm")
			out := fs.String("o", "", "write the output to `FILE` instead of standard output")
			noCheck := fs.Bool("no-check", false, "do not run the checker (output programs the kernel rejects)")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one FILE")
				}
				f, err := asm.ParseFormat(*format)
				if err != nil {
					return usagef("--format: %v", err)
				}
				lp, err := loadProgram(e, args[0], "asm", nil)
				if err != nil {
					return err
				}
				if !*noCheck {
					if _, err := lp.check(); err != nil {
						return fail(exitDenied, err)
					}
				}
				var data []byte
				if f == asm.FormatAsm {
					data = []byte(asm.Disassemble(lp.insns, asm.Options{ByteOrder: lp.bo, View: lp.view}))
				} else if data, err = asm.Marshal(lp.insns, f, lp.order()); err != nil {
					return err
				}
				return e.writeOutput(*out, data)
			}
		},
	}
}
