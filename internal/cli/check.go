package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccompprofile"
)

// checkCommand is "ringfence check".
func checkCommand() *command {
	return &command{
		name:    "check",
		args:    "POLICY",
		summary: "validate and lint a policy",
		help: `Validates a policy (YAML or JSON, docs/policy.md) and lints it: rules that
can never match or change nothing, risky allows (URING_CMD, packet and raw
sockets, creating files anywhere, default allow), sqe_flags equality tests,
conditions that need Linux 7.2. POLICY is a file, "-" for standard input,
or profile:NAME.

With --seccomp PROFILE.json, it also reports every request the policy
allows that the container's seccomp profile would deny as a system call
(a bypass through the ring), with the policy rule and the profile entry
on each side and an example request (docs/seccomp.md). --runtime, --caps,
--arch and --kernel describe the container the profile is evaluated for.

Exit status: 0 valid (warnings allowed unless --strict) and no bypass,
1 invalid, a bypass, or with --strict any warning, 2 bad usage or an
unreadable file.`,
		setup: func(fs *flag.FlagSet) action {
			strict := fs.Bool("strict", false, "exit 1 when there are warnings")
			asJSON := fs.Bool("json", false, "print the result as JSON")
			seccomp := fs.String("seccomp", "", "check the policy against the seccomp profile `PROFILE` (a JSON file)")
			opts := seccompFlags(fs)
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one POLICY")
				}
				o, err := opts()
				if err != nil {
					return usagef("%v", err)
				}
				var prof *seccompprofile.Profile
				if *seccomp != "" {
					if prof, err = loadProfile(e, *seccomp); err != nil {
						return err
					}
				}
				return runCheck(e, args[0], *strict, *asJSON, prof, o)
			}
		},
	}
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
	// Seccomp and Bypasses are set with --seccomp.
	Seccomp  string       `json:"seccomp,omitempty"`
	Bypasses []bypassJSON `json:"bypasses,omitempty"`
}

// bypassJSON is one bypass in the --json output of "ringfence check
// --seccomp".
type bypassJSON struct {
	Request     string   `json:"request"`
	Examples    []string `json:"examples"`
	Rule        *int     `json:"rule"` // 1-based; null for the policy's default
	PolicyRule  string   `json:"policy_rule"`
	Syscall     string   `json:"syscall"`
	Verdict     string   `json:"verdict"` // "denied" or "unknown"
	ProfileRule string   `json:"profile_rule"`
	ProfilePos  string   `json:"profile_pos,omitempty"`
}

type checkJSONItem struct {
	Pos     string `json:"pos"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code,omitempty"`
	Rule    *int   `json:"rule,omitempty"` // 1-based, as messages count
	Message string `json:"message"`
}

// runCheck checks the policy arg and prints the result.
func runCheck(e *env, arg string, strict, asJSON bool, prof *seccompprofile.Profile, o seccompprofile.Options) error {
	data, name, err := e.readPolicy(arg)
	if err != nil {
		return err
	}
	out := checkJSON{File: name, Errors: []checkJSONItem{}, Warnings: []checkJSONItem{}}
	p, err := policy.Parse(data, name)
	var diags []policy.Diagnostic
	if err != nil {
		var list policy.ErrorList
		if !errors.As(err, &list) {
			return err
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
	var bypasses []seccompprofile.Bypass
	if prof != nil {
		out.Seccomp = prof.File
		if p != nil {
			bypasses, err = seccompprofile.Check(prof, p, o)
			if err != nil {
				return fail(exitUsage, err)
			}
		}
		out.Bypasses = []bypassJSON{}
		for _, b := range bypasses {
			j := bypassJSON{Request: b.Request.String(), PolicyRule: b.PolicyRule, Syscall: b.Syscall,
				Verdict: b.Verdict.String(), ProfileRule: b.ProfileRule, Examples: []string{}}
			for _, r := range b.Examples {
				j.Examples = append(j.Examples, r.String())
			}
			if b.Rule >= 0 {
				n := b.Rule + 1
				j.Rule = &n
			}
			if b.Entry != nil {
				j.ProfilePos = b.Entry.Pos.String()
			}
			out.Bypasses = append(out.Bypasses, j)
		}
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for _, it := range out.Errors {
			fmt.Fprintf(e.stdout, "%s: error: %s\n", it.Pos, it.Message)
		}
		for _, d := range diags {
			fmt.Fprintln(e.stdout, d)
		}
		for _, b := range bypasses {
			fmt.Fprintf(e.stdout, "%s: bypass: %s\n", name, b)
		}
		if out.Valid {
			fmt.Fprintf(e.stdout, "%s: valid: %s, default %s, needs Linux %s; %s\n",
				name, plural(out.Rules, "rule"), out.Default, out.Needs, plural(len(diags), "warning"))
			if prof != nil {
				fmt.Fprintf(e.stdout, "%s: %s of the seccomp profile %s\n", name, plural(len(bypasses), "bypass"), prof.File)
			}
		} else {
			fmt.Fprintf(e.stdout, "%s: invalid: %s\n", name, plural(len(out.Errors), "error"))
		}
	}
	if !out.Valid || strict && len(diags) > 0 || len(bypasses) > 0 {
		return exitStatus(exitDenied)
	}
	return nil
}

// plural returns "1 rule" or "3 rules" ("2 bypasses").
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
