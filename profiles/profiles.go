// Package profiles holds ringfence's built-in io_uring policies, embedded in
// the binary: "base", "default", "deny-all", "network-server",
// "postgresql" and "storage". "default", "network-server" and "storage"
// extend "base" (the event loop), as docs/policy.md describes; their
// compiled plans are those of the flat files they replaced (testdata/flat,
// checked by a test).
//
// Each profile is a policy file in the format of docs/policy.md. Its first
// line is a comment "# NAME: SUMMARY", and the comments that follow say
// what it allows and why. The package only stores the text; parse it with
// package policy (or ringfence.Profile).
package profiles

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// DefaultName is the profile "ringfence run" applies when no policy is given.
const DefaultName = "default"

// Info names a built-in profile and summarises it in one line.
type Info struct {
	Name    string // the name "ringfence run --profile" takes, e.g. "storage"
	Summary string // one line: what the profile is for
}

// List returns every built-in profile, sorted by name.
func List() []Info {
	entries, err := files.ReadDir(".")
	if err != nil {
		// The embedded directory always exists; this cannot happen.
		panic(err)
	}
	var out []Info
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok {
			continue
		}
		data, _ := files.ReadFile(e.Name())
		out = append(out, Info{Name: name, Summary: summary(name, data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the names of the built-in profiles, sorted.
func Names() []string {
	var names []string
	for _, i := range List() {
		names = append(names, i.Name)
	}
	return names
}

// Get returns the policy text of the named profile. The error for an unknown
// name lists the known ones.
func Get(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("unknown profile %q; built-in profiles: %s", name, strings.Join(Names(), ", "))
	}
	data, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("unknown profile %q; built-in profiles: %s", name, strings.Join(Names(), ", "))
	}
	return data, nil
}

// summary returns what follows "# NAME:" on the first line of data.
func summary(name string, data []byte) string {
	first, _, _ := strings.Cut(string(data), "\n")
	s, ok := strings.CutPrefix(first, "# "+name+":")
	if !ok {
		return ""
	}
	return strings.TrimSpace(s)
}
