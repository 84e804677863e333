package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ringfence/ringfence/policy"
)

const checkHelp = `usage: ringfence check [--strict] [--json] POLICY

Validates a policy file (YAML or JSON, docs/policy.md) and lints it: rules
that can never match or change nothing, risky allows (URING_CMD, packet and
raw sockets, creating files anywhere, default allow), sqe_flags equality
tests, conditions that need Linux 7.2. POLICY "-" reads standard input.

Exit status: 0 valid (warnings allowed unless --strict), 1 invalid or, with
--strict, any warning, 2 bad usage or unreadable file.

Flags:
`

// readPolicyInput reads path, or standard input for "-", returning the
// name to use in messages.
func readPolicyInput(e *env, path string) ([]byte, string, error) {
	if path == "-" {
		data, err := io.ReadAll(e.stdin)
		return data, "<stdin>", err
	}
	data, err := os.ReadFile(path)
	return data, path, err
}

// checkJSON is the --json output of "ringfence check".
type checkJSON struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Errors   []checkJSONItem `json:"errors"`
	Warnings []checkJSONItem `json:"warnings"`
	Rules    int             `json:"rules"`
	Default  string          `json:"default,omitempty"`
	Needs    string          `json:"needs_kernel,omitempty"`
}

type checkJSONItem struct {
	Pos     string `json:"pos"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code,omitempty"`
	Rule    *int   `json:"rule,omitempty"` // 1-based, as messages count
	Message string `json:"message"`
}

// cmdCheck is "ringfence check".
func cmdCheck(e *env, args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	strict := fs.Bool("strict", false, "exit 1 when there are warnings")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.Usage = func() { fmt.Fprint(e.stderr, checkHelp); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	data, name, err := readPolicyInput(e, pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence check: %v\n", err)
		return exitUsage
	}
	out := checkJSON{File: name, Errors: []checkJSONItem{}, Warnings: []checkJSONItem{}}
	p, err := policy.Parse(data, name)
	var diags []policy.Diagnostic
	if err != nil {
		var list policy.ErrorList
		if !errors.As(err, &list) {
			fmt.Fprintf(e.stderr, "ringfence check: %v\n", err)
			return exitUsage
		}
		for _, pe := range list {
			out.Errors = append(out.Errors, checkJSONItem{Pos: pe.Pos.String(), Line: pe.Pos.Line, Col: pe.Pos.Col, Message: pe.Msg})
		}
	} else {
		out.Valid = true
		out.Rules = len(p.Rules)
		out.Default = p.Default.String()
		out.Needs = p.Needs().String()
		diags = p.Lint()
		for _, d := range diags {
			it := checkJSONItem{Pos: d.Pos.String(), Line: d.Pos.Line, Col: d.Pos.Col, Code: d.Code, Message: d.Message}
			if d.Rule >= 0 {
				n := d.Rule + 1
				it.Rule = &n
			}
			out.Warnings = append(out.Warnings, it)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		for _, it := range out.Errors {
			fmt.Fprintf(e.stdout, "%s: error: %s\n", it.Pos, it.Message)
		}
		for _, d := range diags {
			fmt.Fprintln(e.stdout, d)
		}
		if out.Valid {
			fmt.Fprintf(e.stdout, "%s: valid: %s, default %s, needs Linux %s; %s\n",
				name, plural(out.Rules, "rule"), out.Default, out.Needs, plural(len(diags), "warning"))
		} else {
			fmt.Fprintf(e.stdout, "%s: invalid: %s\n", name, plural(len(out.Errors), "error"))
		}
	}
	switch {
	case !out.Valid:
		return exitDenied
	case *strict && len(diags) > 0:
		return exitDenied
	}
	return exitOK
}

// plural returns "1 rule" or "3 rules".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
