package cli

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
	"github.com/ringfence/ringfence/cbpf"
)

const asmHelp = `usage: ringfence asm [--format json|c|go|raw|asm] [-o OUT] [--no-check] FILE

Assembles FILE (docs/asm.md; "-" reads standard input), checks the program
against the rules Linux applies to io_uring filters, and prints it as a JSON
array of [code, jt, jf, k], a C struct sock_filter array, a Go
[]cbpf.Instruction literal, raw struct sock_filter bytes (in the byte order
the file declares with .endian, little-endian by default), or canonical
assembly.

Exit status: 0 assembled and accepted, 1 the checker rejects the program,
2 bad usage or an assembly error.

Flags:
`

// newToolFlags returns a FlagSet whose usage prints help and the flags to
// e.stderr.
func newToolFlags(e *env, name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, help)
		fs.PrintDefaults()
	}
	return fs
}

// flagExit is the exit status for a flag parsing error: 0 for -h.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// readToolInput reads path, or standard input for "-", and returns the
// name to use in messages.
func readToolInput(e *env, path string) ([]byte, string, error) {
	if path == "-" {
		data, err := io.ReadAll(e.stdin)
		return data, "<stdin>", err
	}
	data, err := os.ReadFile(path)
	return data, path, err
}

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
	data, name, err := readToolInput(e, path)
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

// cmdAsm is "ringfence asm".
func cmdAsm(e *env, args []string) int {
	fs := newToolFlags(e, "asm", asmHelp)
	format := fs.String("format", "json", "output `format`: json, c, go, raw or asm")
	out := fs.String("o", "", "write the output to `FILE` instead of standard output")
	noCheck := fs.Bool("no-check", false, "do not run the checker (output programs the kernel rejects)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	f, err := asm.ParseFormat(*format)
	if err != nil {
		fmt.Fprintln(e.stderr, "ringfence asm:", err)
		return exitUsage
	}
	lp, err := loadProgram(e, pos[0], "asm", nil)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	if !*noCheck {
		if _, err := lp.check(); err != nil {
			fmt.Fprintln(e.stderr, err)
			return exitDenied
		}
	}
	data, err := asm.Marshal(lp.insns, f, lp.order())
	if f == asm.FormatAsm {
		data = []byte(asm.Disassemble(lp.insns, asm.Options{ByteOrder: lp.bo, View: lp.view}))
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "ringfence asm:", err)
		return exitUsage
	}
	if *out != "" {
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			fmt.Fprintln(e.stderr, "ringfence asm:", err)
			return exitUsage
		}
		return exitOK
	}
	if _, err := e.stdout.Write(data); err != nil {
		fmt.Fprintln(e.stderr, "ringfence asm:", err)
		return exitUsage
	}
	return exitOK
}
