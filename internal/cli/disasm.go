package cli

import (
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/asm"
)

const disasmHelp = `usage: ringfence disasm [--format auto|json|c|go|raw|asm] [--view VIEW] [--endian little|big] [--numeric] [--check] FILE

Prints a program as assembly (docs/asm.md) that "ringfence asm" reads back
to exactly the same instructions. FILE ("-" for standard input) holds a JSON
array of [code, jt, jf, k], a C struct sock_filter array, a Go
[]cbpf.Instruction literal, raw struct sock_filter bytes or assembly;
--format auto detects which. VIEW (socket, open, connect, or an opcode such
as OPENAT) names the words of the per-opcode data and the constants compared
with them; without it they are printed as byte offsets. --endian gives the
byte order of raw input and of the machine the program is for. --check
also runs the checker and ends the listing with its verdict as a comment.

Exit status: 0 printed (and, with --check, accepted), 1 the checker rejects
the program (--check), 2 bad usage or unreadable program.

Flags:
`

// cmdDisasm is "ringfence disasm".
func cmdDisasm(e *env, args []string) int {
	fs := newToolFlags(e, "disasm", disasmHelp)
	format := fs.String("format", "auto", "input `format`: auto, json, c, go, raw or asm")
	view := fs.String("view", "", "name context words by this `VIEW` or opcode")
	endian := fs.String("endian", "", "byte `order`: little (default) or big")
	numeric := fs.Bool("numeric", false, "print constants as numbers, never by name")
	check := fs.Bool("check", false, "run the checker and print its verdict as a final comment")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	bo, err := parseEndian(*endian)
	if err != nil {
		fmt.Fprintln(e.stderr, "ringfence disasm:", err)
		return exitUsage
	}
	lp, err := loadProgram(e, pos[0], *format, bo)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	opt := asm.Options{ByteOrder: lp.bo, View: lp.view, Numeric: *numeric}
	if *view != "" {
		if opt.View, err = asm.ParseView(*view); err != nil {
			fmt.Fprintln(e.stderr, "ringfence disasm:", err)
			return exitUsage
		}
	}
	fmt.Fprint(e.stdout, asm.Disassemble(lp.insns, opt))
	if *check {
		lp.pos = nil // positions would point into the input, not this listing
		if _, err := lp.check(); err != nil {
			fmt.Fprintf(e.stdout, "; checker: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return exitDenied
		}
		fmt.Fprintln(e.stdout, "; checker: accepted")
	}
	return exitOK
}
