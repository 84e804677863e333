package policy_test

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/policy"
)

// Parse a policy, then ask the reference evaluator about two requests.
func ExampleParse() {
	src := `
version: 1
default: deny
rules:
  - name: inet sockets
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: SOCK_STREAM
`
	p, err := policy.Parse([]byte(src), "example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{
		"op=SOCKET family=AF_INET6 type=SOCK_STREAM|SOCK_NONBLOCK",
		"op=SOCKET family=AF_PACKET type=SOCK_RAW",
	} {
		r, _ := policy.ParseRequest(s)
		d := p.Decide(r)
		fmt.Printf("%s: %s by %s\n", s, d.Action(), p.Describe(d))
	}
	// Output:
	// op=SOCKET family=AF_INET6 type=SOCK_STREAM|SOCK_NONBLOCK: allow by rule 1 ("inet sockets") at line 5
	// op=SOCKET family=AF_PACKET type=SOCK_RAW: deny by the default (deny)
}

// Errors carry the file, line and column, and a suggestion.
func ExampleParse_errors() {
	src := "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_INTE\n"
	_, err := policy.Parse([]byte(src), "policy.yaml")
	fmt.Println(err)
	// Output:
	// policy.yaml:7:22: unknown address family "AF_INTE"; did you mean AF_INET?
}

// Lint finds rules that can never match and risky allows.
func ExamplePolicy_Lint() {
	src := `version: 1
default: deny
rules:
  - ops: [OPENAT]
    action: allow
  - ops: [OPENAT]
    action: deny
    when:
      open.flags: {has_any: O_CREAT}
`
	p, _ := policy.Parse([]byte(src), "p.yaml")
	for _, d := range p.Lint() {
		fmt.Println(d.Pos, d.Code)
	}
	// Output:
	// p.yaml:4:5 risky-allow
	// p.yaml:6:5 never-matches
}

// A policy that extends the built-in "default" profile and narrows it:
// no IPv6 sockets. Its own rules decide first, then the profile's.
func ExampleParse_extends() {
	src := `version: 1
extends: default
rules:
  - name: no IPv6
    ops: [SOCKET]
    action: deny
    when:
      socket.family: AF_INET6
`
	p, err := policy.Parse([]byte(src), "no-v6.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("default:", p.Default, "extends:", p.Extends)
	for _, s := range []string{
		"op=SOCKET family=AF_INET6 type=SOCK_STREAM",
		"op=SOCKET family=AF_INET type=SOCK_STREAM",
		"op=URING_CMD",
	} {
		r, _ := policy.ParseRequest(s)
		d := p.Decide(r)
		fmt.Printf("%s: %s by %s\n", s, d.Action(), p.Describe(d))
	}
	// Output:
	// default: deny extends: [default]
	// op=SOCKET family=AF_INET6 type=SOCK_STREAM: deny by rule 1 ("no IPv6") at line 4
	// op=SOCKET family=AF_INET type=SOCK_STREAM: allow by rule 5 ("ordinary sockets only") from default at profile default:48:5
	// op=URING_CMD: deny by the default (deny)
}

// A parser of another YAML or JSON format embeds FileErrors to report
// every problem at its file:line:col, as policy's own parsers do.
func ExampleFileErrors() {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("{\"name\": \"x\",\n \"size\": \"big\"}"), &doc); err != nil {
		fmt.Println(err)
		return
	}
	fe := policy.FileErrors{File: "thing.json"}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], root.Content[i+1]; k.Value == "size" && v.Tag != "!!int" {
			fe.Errorf(v, "%s must be a number, got %q", k.Value, v.Value)
		}
	}
	fe.ErrorAt(policy.Pos{File: fe.File}, "no %q key", "kind")
	fmt.Println(fe.Errs)
	// Output:
	// thing.json:2:10: size must be a number, got "big"
	// thing.json: no "kind" key
}
