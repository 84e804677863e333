// Package seccompprofile reads container seccomp profiles (the OCI runtime
// spec's linux.seccomp, and Docker's and Podman's profile files with
// "names", "includes" and "excludes") and relates them to io_uring: which
// system call each io_uring opcode stands for (Table), the io_uring policy
// that denies through the ring what a profile denies as system calls
// (Derive), and the requests a policy allows that a profile would deny as
// system calls (Check). docs/seccomp.md is the specification.
//
// The package makes no system calls; the profile's evaluation follows the
// runtimes' rules (capabilities, architectures, kernel versions decide
// which entries apply) with one documented choice where several entries
// match one call: the most restrictive action decides.
package seccompprofile

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
)

// Profile is a parsed seccomp profile.
type Profile struct {
	// File is the name the profile was read from, for positions.
	File string
	// DefaultAction decides calls no entry matches.
	DefaultAction Action
	// DefaultErrno is defaultErrnoRet (0 when not given).
	DefaultErrno uint64
	// DefaultPos is where defaultAction was written.
	DefaultPos policy.Pos
	// Architectures and ArchMap are kept as written; io_uring requests
	// are not per architecture, so they do not change any result here.
	Architectures []string
	// Syscalls are the entries in file order.
	Syscalls []Entry
}

// Action is a seccomp action as profiles write it ("SCMP_ACT_ERRNO").
type Action string

// Allows reports whether the action lets the call run: SCMP_ACT_ALLOW and
// SCMP_ACT_LOG (which allows and logs). Every other action (ERRNO, KILL,
// KILL_PROCESS, KILL_THREAD, TRAP, TRACE, NOTIFY) does not run the call
// as asked, or leaves it to an agent this package cannot see, and counts as
// a denial.
func (a Action) Allows() bool { return a == "SCMP_ACT_ALLOW" || a == "SCMP_ACT_LOG" }

// actions are the actions the runtime spec defines.
var actions = []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
	"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}

// Entry is one element of "syscalls".
type Entry struct {
	// Names are the system calls the entry is about ("name" in the old
	// single-name format becomes one element).
	Names []string
	// Action is what happens when the entry matches.
	Action Action
	// Errno is errnoRet (0 when not given).
	Errno uint64
	// Args must all hold for the entry to match.
	Args []Arg
	// Includes and Excludes decide whether the entry applies at all.
	Includes, Excludes Filter
	// Comment is free text from the file.
	Comment string
	// Pos is where the entry starts.
	Pos policy.Pos
}

// String describes the entry for messages: the action, the names (the
// first few), the argument conditions and the position.
func (e Entry) String() string {
	names := e.Names
	more := ""
	if len(names) > 3 {
		names, more = names[:3], fmt.Sprintf(" and %d more", len(e.Names)-3)
	}
	s := fmt.Sprintf("%s %s%s", e.Action, strings.Join(names, ", "), more)
	if len(e.Args) > 0 {
		var parts []string
		for _, a := range e.Args {
			parts = append(parts, a.String())
		}
		s += " when " + strings.Join(parts, " and ")
	}
	return s + " (" + e.Pos.String() + ")"
}

// Names reports whether the entry names syscall.
func (e Entry) names(syscall string) bool {
	for _, n := range e.Names {
		if n == syscall {
			return true
		}
	}
	return false
}

// Op is a comparison of a seccomp argument condition.
type Op string

// The comparisons of the runtime spec.
const (
	OpEq       Op = "SCMP_CMP_EQ"
	OpNe       Op = "SCMP_CMP_NE"
	OpLt       Op = "SCMP_CMP_LT"
	OpLe       Op = "SCMP_CMP_LE"
	OpGt       Op = "SCMP_CMP_GT"
	OpGe       Op = "SCMP_CMP_GE"
	OpMaskedEq Op = "SCMP_CMP_MASKED_EQ"
)

// Arg is one argument condition: argument Index compared with Value (for
// SCMP_CMP_MASKED_EQ: arg & Value == ValueTwo).
type Arg struct {
	Index           int
	Value, ValueTwo uint64
	Op              Op
	Pos             policy.Pos
}

// Holds reports whether the condition holds for argument value v
// (unsigned 64-bit comparisons, as seccomp's).
func (a Arg) Holds(v uint64) bool {
	switch a.Op {
	case OpEq:
		return v == a.Value
	case OpNe:
		return v != a.Value
	case OpLt:
		return v < a.Value
	case OpLe:
		return v <= a.Value
	case OpGt:
		return v > a.Value
	case OpGe:
		return v >= a.Value
	case OpMaskedEq:
		return v&a.Value == a.ValueTwo
	}
	return false
}

// String writes the condition as "arg0 < 38" or "arg1 & 0x7e020000 == 0".
func (a Arg) String() string {
	sym := map[Op]string{OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">="}[a.Op]
	if a.Op == OpMaskedEq {
		return fmt.Sprintf("arg%d & %#x == %#x", a.Index, a.Value, a.ValueTwo)
	}
	return fmt.Sprintf("arg%d %s %d", a.Index, sym, a.Value)
}

// Filter is an entry's includes or excludes: capabilities (all of them for
// includes, any of them for excludes), architectures (Go names: amd64,
// arm64, ...) and a minimum kernel version.
type Filter struct {
	Caps, Arches []string
	MinKernel    string
}

// Load reads and parses the profile at path.
func Load(path string) (*Profile, error) {
	data, err := readlimit.File(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Keys of the formats, per level: the OCI runtime spec's linux.seccomp and
// the Docker/Podman profile files (which add archMap, names, includes,
// excludes, comment, and Podman's defaultErrno/errno names).
var (
	profileKeys = []string{"defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap",
		"flags", "listenerPath", "listenerMetadata", "syscalls"}
	entryKeys  = []string{"names", "name", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes"}
	argKeys    = []string{"index", "value", "valueTwo", "op"}
	filterKeys = []string{"caps", "arches", "minKernel"}
)

// Parse parses a profile in JSON (YAML is accepted too). Every problem is
// reported with file:line:col, all at once, as a policy.ErrorList. Unknown
// keys are errors: a key this package does not know could change what the
// profile means.
func Parse(data []byte, filename string) (*Profile, error) {
	p := &parser{policy.FileErrors{File: filename}}
	prof := p.profile(data)
	if len(p.Errs) > 0 {
		return nil, p.Errs
	}
	return prof, nil
}

// parser walks a profile's yaml.Node tree and collects errors with
// positions, as policy's parsers do.
type parser struct {
	policy.FileErrors
}

// mapping returns n's key/value pairs after checking the keys.
func (p *parser) mapping(n *yaml.Node, what string, allowed []string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.Errorf(n, "%s must be an object", what)
		return nil
	}
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.Errorf(k, "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		if !slices.Contains(allowed, k.Value) {
			p.Errorf(k, "unknown key %q in %s%s (known: %s)", k.Value, what,
				abi.DidYouMean(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.Errorf(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) strs(n *yaml.Node, what string) []string {
	var out []string
	for _, c := range p.seq(n, what+" must be a list of strings") {
		out = append(out, p.str(c, what))
	}
	return out
}

// seq returns the items of a list node: none for null, and none with
// the error msg for anything that is not a list.
func (p *parser) seq(n *yaml.Node, msg string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.Errorf(n, "%s", msg)
		return nil
	}
	return n.Content
}

func (p *parser) uint(n *yaml.Node, what string) uint64 {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.Errorf(n, "%s must be a number", what)
		return 0
	}
	v, err := strconv.ParseUint(n.Value, 10, 64)
	if err != nil {
		p.Errorf(n, "%s: %q is not an unsigned 64-bit number", what, n.Value)
	}
	return v
}

// ParseOCIConfig reads the seccomp profile of an OCI runtime bundle's
// config.json (linux.seccomp), with positions in that file. It returns
// nil and no error when the configuration has no seccomp profile. A
// profile in an OCI configuration has no includes or excludes (the
// runtime that wrote it applied them), so Options do not change how it is
// read, only Derive's and Check's defaults.
func ParseOCIConfig(data []byte, filename string) (*Profile, error) {
	p := &parser{policy.FileErrors{File: filename}}
	root := p.document(data, "OCI configuration")
	if root == nil {
		return nil, p.Errs
	}
	if root.Kind != yaml.MappingNode {
		p.Errorf(root, "an OCI configuration is a JSON object")
		return nil, p.Errs
	}
	linux := lookup(root, "linux")
	if linux == nil || linux.Kind != yaml.MappingNode {
		return nil, nil
	}
	sec := lookup(linux, "seccomp")
	if sec == nil || (sec.Kind == yaml.ScalarNode && sec.Tag == "!!null") {
		return nil, nil
	}
	prof := p.profileNode(sec)
	if len(p.Errs) > 0 {
		return nil, p.Errs
	}
	return prof, nil
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// document parses data and returns its root node, or nil after recording
// why not.
func (p *parser) document(data []byte, what string) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("empty %s", what)
		}
		p.ErrorAt(policy.Pos{File: p.File}, "not valid JSON: %v", err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.ErrorAt(policy.Pos{File: p.File}, "empty %s", what)
		return nil
	}
	return doc.Content[0]
}

func (p *parser) profile(data []byte) *Profile {
	root := p.document(data, "profile")
	if root == nil {
		return nil
	}
	return p.profileNode(root)
}

func (p *parser) profileNode(root *yaml.Node) *Profile {
	prof := &Profile{File: p.File}
	haveDefault := false
	for _, kv := range p.mapping(root, "profile", profileKeys) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "defaultAction":
			haveDefault = true
			prof.DefaultAction = p.action(v)
			prof.DefaultPos = p.At(v)
		case "defaultErrnoRet":
			prof.DefaultErrno = p.uint(v, "defaultErrnoRet")
		case "architectures":
			prof.Architectures = p.strs(v, "architectures")
		case "syscalls":
			for _, en := range p.seq(v, "syscalls must be a list") {
				prof.Syscalls = append(prof.Syscalls, p.entry(en))
			}
		}
	}
	if !haveDefault {
		p.Errorf(root, "missing defaultAction")
	}
	return prof
}

func (p *parser) action(n *yaml.Node) Action {
	s := p.str(n, "action")
	if slices.Contains(actions, s) {
		return Action(s)
	}
	if s != "" {
		p.Errorf(n, "unknown action %q%s", s, abi.DidYouMean(s, actions))
	}
	return Action(s)
}

func (p *parser) entry(n *yaml.Node) Entry {
	e := Entry{Pos: p.At(n)}
	haveAction := false
	for _, kv := range p.mapping(n, "syscall entry", entryKeys) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "names":
			e.Names = append(e.Names, p.strs(v, "names")...)
		case "name":
			e.Names = append(e.Names, p.str(v, "name"))
		case "action":
			haveAction = true
			e.Action = p.action(v)
		case "errnoRet":
			e.Errno = p.uint(v, "errnoRet")
		case "comment":
			e.Comment = p.str(v, "comment")
		case "includes":
			e.Includes = p.filter(v, "includes")
		case "excludes":
			e.Excludes = p.filter(v, "excludes")
		case "args":
			for _, an := range p.seq(v, "args must be a list") {
				e.Args = append(e.Args, p.arg(an))
			}
		}
	}
	if !haveAction {
		p.Errorf(n, "syscall entry has no action")
	}
	if len(e.Names) == 0 {
		p.Errorf(n, "syscall entry names no system call")
	}
	return e
}

func (p *parser) arg(n *yaml.Node) Arg {
	a := Arg{Pos: p.At(n)}
	haveOp := false
	for _, kv := range p.mapping(n, "argument condition", argKeys) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "index":
			x := p.uint(v, "index")
			if x > 5 {
				p.Errorf(v, "index %d: system calls have arguments 0 to 5", x)
			}
			a.Index = int(x)
		case "value":
			a.Value = p.uint(v, "value")
		case "valueTwo":
			a.ValueTwo = p.uint(v, "valueTwo")
		case "op":
			haveOp = true
			s := p.str(v, "op")
			switch Op(s) {
			case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe, OpMaskedEq:
				a.Op = Op(s)
			default:
				ops := []string{string(OpEq), string(OpNe), string(OpLt), string(OpLe), string(OpGt), string(OpGe), string(OpMaskedEq)}
				p.Errorf(v, "unknown comparison %q%s", s, abi.DidYouMean(s, ops))
			}
		}
	}
	if !haveOp {
		p.Errorf(n, "argument condition has no op")
	}
	return a
}

func (p *parser) filter(n *yaml.Node, what string) Filter {
	var f Filter
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return f
	}
	for _, kv := range p.mapping(n, what, filterKeys) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "caps":
			f.Caps = p.strs(v, what+".caps")
		case "arches":
			f.Arches = p.strs(v, what+".arches")
		case "minKernel":
			f.MinKernel = p.str(v, what+".minKernel")
			if _, err := parseKernel(f.MinKernel); err != nil && f.MinKernel != "" {
				p.Errorf(v, "%s.minKernel: %v", what, err)
			}
		}
	}
	return f
}

// parseKernel reads "4.8" or "5.10.2" as a major.minor version.
func parseKernel(s string) (abi.Version, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return abi.Version{}, fmt.Errorf("kernel version %q is not MAJOR.MINOR", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return abi.Version{}, fmt.Errorf("kernel version %q is not MAJOR.MINOR", s)
	}
	return abi.Version{Major: maj, Minor: min}, nil
}
