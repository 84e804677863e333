package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageLine is the command's usage: its name, every flag, its arguments.
// Lines are wrapped at 80 columns.
func (c *command) usageLine() string {
	words := []string{"ringfence", c.name}
	if c.subs != nil {
		words = append(words, "COMMAND", "[ARGS...]")
	} else {
		fs, _ := c.flags()
		fs.VisitAll(func(f *flag.Flag) {
			if isBool(f) {
				words = append(words, "[--"+f.Name+"]")
				return
			}
			placeholder, _ := flag.UnquoteUsage(f)
			words = append(words, "[--"+f.Name+" "+placeholder+"]")
		})
		if c.args != "" {
			words = append(words, c.args)
		}
	}
	var b strings.Builder
	b.WriteString("usage:")
	indent := len("usage: ringfence " + c.name + " ")
	col := len("usage:")
	for i, w := range words {
		if w == "" {
			continue
		}
		if i > 2 && col+1+len(w) > 80 {
			b.WriteString("\n" + strings.Repeat(" ", indent-1))
			col = indent - 1
		}
		b.WriteString(" " + w)
		col += 1 + len(w)
	}
	return b.String()
}

// writeUsage writes the usage line and where to find more, for bad
// usage.
func (c *command) writeUsage(w io.Writer) {
	fmt.Fprintln(w, c.usageLine())
	fmt.Fprintf(w, "Run %q for more.\n", strings.TrimSpace("ringfence help "+c.name))
}

// writeHelp writes the command's help: usage line, description, flags
// or subcommands.
func (c *command) writeHelp(w io.Writer) {
	fmt.Fprintln(w, c.usageLine())
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	if c.subs != nil {
		fmt.Fprintln(w, "\nCommands:")
		width := 0
		for _, s := range c.subs {
			if !s.hidden {
				width = max(width, len(strings.TrimSpace(s.name[len(c.name):])))
			}
		}
		for _, s := range c.subs {
			if !s.hidden {
				fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(s.name[len(c.name):]), s.summary)
			}
		}
		fmt.Fprintf(w, "\nRun %q for a command's flags and details.\n", strings.Join(strings.Fields("ringfence help "+c.name+" COMMAND"), " "))
		return
	}
	fs, _ := c.flags()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		placeholder, usage := flag.UnquoteUsage(f)
		if isBool(f) {
			placeholder = ""
		}
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace("--"+f.Name+" "+placeholder))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "        %s\n", usage)
	})
}
