package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

// runCLI runs "ringfence args..." in-process.
func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(&env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// allCommands returns every command and subcommand.
func allCommands() []*command {
	var all []*command
	var walk func([]*command)
	walk = func(cs []*command) {
		for _, c := range cs {
			all = append(all, c)
			walk(c.subs)
		}
	}
	walk(commands())
	return all
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		argsEnd bool
		pos     []string
		strict  bool
		out     string
		err     string
	}{
		{[]string{"p.yaml", "--strict"}, false, []string{"p.yaml"}, true, "", ""},
		{[]string{"--strict", "p.yaml"}, false, []string{"p.yaml"}, true, "", ""},
		{[]string{"-o", "x", "p.yaml"}, false, []string{"p.yaml"}, false, "x", ""},
		{[]string{"p.yaml", "-o=x", "q"}, false, []string{"p.yaml", "q"}, false, "x", ""},
		// Everything after "--" is an argument, even what looks like a flag.
		{[]string{"--", "p.yaml", "--strict"}, false, []string{"p.yaml", "--strict"}, false, "", ""},
		{[]string{"p.yaml", "--", "--strict"}, false, []string{"p.yaml", "--strict"}, false, "", ""},
		{[]string{"--strict", "--", "-"}, false, []string{"-"}, true, "", ""},
		// "--" as a flag's value is the value.
		{[]string{"-o", "--", "p.yaml", "--strict"}, false, []string{"p.yaml"}, true, "--", ""},
		// "-" is standard input, an argument.
		{[]string{"-", "--strict"}, false, []string{"-"}, true, "", ""},
		// With argsEnd, the first argument ends the flags.
		{[]string{"--strict", "cmd", "--strict", "-o"}, true, []string{"cmd", "--strict", "-o"}, true, "", ""},
		{[]string{"--", "--strict"}, true, []string{"--strict"}, false, "", ""},
		{[]string{"--nope", "p.yaml"}, false, nil, false, "", "flag provided but not defined: -nope"},
		{[]string{"p.yaml", "-o"}, false, nil, false, "", "flag needs an argument: -o"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		strict := fs.Bool("strict", false, "")
		out := fs.String("o", "", "")
		pos, err := parseArgs(fs, tt.args, tt.argsEnd)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(pos, tt.pos) || *strict != tt.strict || *out != tt.out {
			t.Errorf("%q (argsEnd %v): args %q, strict %v, o %q, err %v; want %q, %v, %q", tt.args, tt.argsEnd, pos, *strict, *out, err, tt.pos, tt.strict, tt.out)
		}
	}
}

// TestDoubleDash runs "check -- FILE --strict": --strict is a second
// argument, not the flag, so check refuses two policies.
func TestDoubleDash(t *testing.T) {
	warned := writeTemp(t, "warned.yaml", "version: 1\ndefault: allow\n")
	if code, out, _ := runCLI("", "check", warned, "--strict"); code != exitDenied || !strings.Contains(out, "warning") {
		t.Fatalf("check FILE --strict: exit %d, %q; want 1 for the default-allow warning", code, out)
	}
	code, out, errs := runCLI("", "check", "--", warned, "--strict")
	if code != exitUsage || out != "" || !strings.Contains(errs, "give one POLICY") {
		t.Errorf("check -- FILE --strict: exit %d, stdout %q, stderr %q; want 2 and a usage error", code, out, errs)
	}
	// After "--", a file whose name starts with "-" is a file.
	t.Chdir(filepath.Dir(warned))
	if err := os.Rename(warned, "-p.yaml"); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI("", "check", "--", "-p.yaml"); code != exitOK || !strings.Contains(out, "-p.yaml: valid") {
		t.Errorf("check -- -p.yaml: exit %d, %q, %q", code, out, errs)
	}
	if code, _, errs := runCLI("", "check", "-p.yaml"); code != exitUsage || !strings.Contains(errs, "flag provided but not defined: -p.yaml") {
		t.Errorf("check -p.yaml: exit %d, %q; want a bad flag", code, errs)
	}
}

// TestUsageOnError checks that bad usage prints the message and the usage
// line on standard error, nothing on standard output, and exits 2.
func TestUsageOnError(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stderr
	}{
		{nil, []string{"ringfence: no command given", "usage: ringfence COMMAND [ARGS...]"}},
		{[]string{"chek"}, []string{`ringfence: unknown command "chek"; did you mean check?`}},
		{[]string{"check"}, []string{"ringfence check: give one POLICY", "usage: ringfence check [--arch ARCH] [--caps CAPS] [--json] [--kernel VERSION]", `Run "ringfence help check"`}},
		{[]string{"check", "--nope", "x"}, []string{"ringfence check: flag provided but not defined: -nope", "usage: ringfence check"}},
		{[]string{"compile", "--kernel", "seven", "-"}, []string{"ringfence compile: --kernel: ", "usage: ringfence compile"}},
		{[]string{"emu"}, []string{"ringfence emu: give one PROG", "usage: ringfence emu"}},
		{[]string{"vm", "test", "x"}, []string{`ringfence vm test: unexpected argument "x"`, "usage: ringfence vm test"}},
		{[]string{"help", "nosuch"}, []string{`ringfence: no command "nosuch"`}},
		{[]string{"help", "vm", "nosuch"}, []string{`ringfence vm: no command "vm nosuch"`}},
	}
	for _, tt := range tests {
		code, out, errs := runCLI("version: 1\ndefault: deny\n", tt.args...)
		if code != exitUsage || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing on stdout", tt.args, code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, w, errs)
			}
		}
	}
}

// TestHelp checks "ringfence help CMD", "CMD -h" and "CMD --help": the same
// help, on standard output, exit 0.
func TestHelp(t *testing.T) {
	for _, c := range allCommands() {
		words := strings.Fields(c.name)
		code, help, errs := runCLI("", append([]string{"help"}, words...)...)
		if code != exitOK || errs != "" || !strings.HasPrefix(help, "usage: ringfence "+c.name) {
			t.Errorf("help %s: exit %d, stderr %q, stdout %q", c.name, code, errs, help)
			continue
		}
		for _, h := range []string{"-h", "--help"} {
			code, out, errs := runCLI("", append(words, h)...)
			if code != exitOK || errs != "" || out != help {
				t.Errorf("%s %s: exit %d, stderr %q, stdout differs from help %s:\n%s", c.name, h, code, errs, c.name, out)
			}
		}
	}
	code, out, errs := runCLI("", "help")
	if code != exitOK || errs != "" {
		t.Fatalf("help: exit %d, %q", code, errs)
	}
	for _, c := range commands() {
		if strings.Contains(out, "\n  "+c.name+" ") == c.hidden {
			t.Errorf("help lists %s: %v; hidden %v", c.name, !c.hidden, c.hidden)
		}
	}
}

// TestCommandDocs holds every command to one help style: a summary, a
// help text ending with the exit statuses, usage lines that list every
// flag, and a placeholder for every flag that takes a value.
func TestCommandDocs(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range allCommands() {
		if seen[c.name] {
			t.Errorf("two commands named %q", c.name)
		}
		seen[c.name] = true
		if c.summary == "" || strings.HasSuffix(c.summary, ".") {
			t.Errorf("%s: summary %q: want one line without a final period", c.name, c.summary)
		}
		if c.help == "" {
			t.Errorf("%s: no help", c.name)
		}
		if c.subs != nil {
			continue
		}
		if !strings.Contains(c.help, "\nExit status: ") {
			t.Errorf("%s: help does not end with the exit statuses", c.name)
		}
		for _, line := range strings.Split(c.help, "\n") {
			if len(line) > 80 {
				t.Errorf("%s: help line longer than 80 columns: %q", c.name, line)
			}
		}
		if strings.Contains(c.help, "usage:") || strings.Contains(c.help, "Flags:") {
			t.Errorf("%s: help repeats the usage or flags the framework prints", c.name)
		}
		usage := c.usageLine()
		fs, _ := c.flags()
		fs.VisitAll(func(f *flag.Flag) {
			placeholder, text := flag.UnquoteUsage(f)
			want := "[--" + f.Name + "]"
			if !isBool(f) {
				want = "[--" + f.Name + " " + placeholder + "]"
				if placeholder != strings.ToUpper(placeholder) || !strings.Contains(f.Usage, "`") {
					t.Errorf("%s --%s: placeholder %q: give one in capitals in backquotes", c.name, f.Name, placeholder)
				}
			}
			if !strings.Contains(strings.ReplaceAll(usage, "\n", ""), want) && !strings.Contains(usage, want) {
				t.Errorf("%s: usage line lacks %s:\n%s", c.name, want, usage)
			}
			if text == "" {
				t.Errorf("%s --%s: no description", c.name, f.Name)
			}
		})
	}
}

func TestVersionLine(t *testing.T) {
	tests := []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "ringfence: no build information in this binary"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/ringfence/ringfence", Version: "v0.3.0"}},
			"github.com/ringfence/ringfence v0.3.0, built with go1.26.8"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/ringfence/ringfence", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "8749652abc"}, {Key: "vcs.time", Value: "2026-11-30T19:35:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"github.com/ringfence/ringfence (devel), revision 8749652abc (2026-11-30T19:35:00Z), modified, built with go1.26.8"},
		{&debug.BuildInfo{Main: debug.Module{Path: "github.com/ringfence/ringfence", Version: "v0.0.0-20261130193500-8749652abcde"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "8749652abcde"}, {Key: "vcs.modified", Value: "false"}}},
			"github.com/ringfence/ringfence v0.0.0-20261130193500-8749652abcde, revision 8749652abcde"},
	}
	for _, tt := range tests {
		if got := versionLine(tt.bi); got != tt.want {
			t.Errorf("versionLine = %q, want %q", got, tt.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	want := versionLine(readBuildInfo()) + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := runCLI("", args...)
		if code != exitOK || out != want || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", args, code, out, errs, want)
		}
	}
	if code, _, errs := runCLI("", "version", "x"); code != exitUsage || !strings.Contains(errs, `unexpected argument "x"`) {
		t.Errorf("version x: exit %d, %q", code, errs)
	}
}
