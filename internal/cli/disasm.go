package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/asm"
)

// disasmCommand is "ringfence disasm".
func disasmCommand() *command {
	return &command{
		name:    "disasm",
		args:    "FILE",
		summary: "print a filter program as assembly",
		help: `Prints a program as assembly (docs/asm.md) that "ringfence asm" reads back
to exactly the same instructions. FILE ("-" for standard input) holds a JSON
array of [code, jt, jf, k], a C struct sock_filter array, a Go
[]cbpf.Instruction literal, raw struct sock_filter bytes or assembly;
--format auto detects which. VIEW (socket, open, connect, or an opcode such
as OPENAT) names the words of the per-opcode data and the constants compared
with them; without it they are printed as byte offsets. --endian gives the
byte order of raw input and of the machine the program is for. --check
also runs the checker and ends the listing with its verdict as a comment.

Exit status: 0 printed (and, with --check, accepted), 1 the checker rejects
the program (--check), 2 bad usage or unreadable program.`,
		setup: func(fs *flag.FlagSet) action {
			format := fs.String("format", "auto", "input `FORMAT`: auto, json, c, go, raw or asm")
			view := fs.String("view", "", "name context words by this `VIEW` or opcode")
			endian := fs.String("endian", "", "byte `ORDER`: little (default) or big")
			numeric := fs.Bool("numeric", false, "print constants as numbers, never by name")
			check := fs.Bool("check", false, "run the checker and print its verdict as a final comment")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one FILE")
				}
				bo, err := parseEndian(*endian)
				if err != nil {
					return usagef("--endian: %v", err)
				}
				lp, err := loadProgram(e, args[0], *format, bo)
				if err != nil {
					return err
				}
				opt := asm.Options{ByteOrder: lp.bo, View: lp.view, Numeric: *numeric}
				if *view != "" {
					if opt.View, err = asm.ParseView(*view); err != nil {
						return usagef("--view: %v", err)
					}
				}
				fmt.Fprint(e.stdout, asm.Disassemble(lp.insns, opt))
				if *check {
					lp.pos = nil // positions would point into the input, not this listing
					if _, err := lp.check(); err != nil {
						fmt.Fprintf(e.stdout, "; checker: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
						return exitStatus(exitDenied)
					}
					fmt.Fprintln(e.stdout, "; checker: accepted")
				}
				return nil
			}
		},
	}
}
