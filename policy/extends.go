package policy

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/profiles"
)

// Composition (docs/policy.md, "Composition"). A policy may extend others:
//
//	extends: [default, ./site.yaml]
//
// and is then flattened at parse time into one ordinary policy:
//
//   - Rules: the policy's own rules first, in file order, then each base's
//     flattened rules, bases in the order listed. First match per opcode
//     then means: the extending policy's rules decide before any base's, so
//     a deny written there narrows a base's allow, and an allow overrides a
//     base's deny; among bases, an earlier base decides before a later one.
//   - A base reached twice (a diamond) keeps only its first place: a second
//     copy could never match a request the first copy did not.
//   - Default: the extending policy's own "default" when it writes one;
//     otherwise the bases' defaults, which must all be the same.
//   - Register section: the extending policy's own when it writes one;
//     otherwise the one its bases agree on (bases without a section have
//     no say, as a base with no rule for an opcode has none).
//   - Cycles and bases that cannot be found or do not parse are errors at
//     the file:line:col of the reference.

// Loader finds the policies named in "extends". Parse uses DefaultLoader;
// ParseWith takes another (tests, policies kept in memory).
type Loader interface {
	// Load returns the text of the policy ref names, as written in the
	// policy called from (its file name as used in positions; "" or "-"
	// for a policy read from standard input), and the file name to use in
	// the base's positions, which also identifies it: two references that
	// give the same file name are the same base.
	Load(ref, from string) (data []byte, file string, err error)
}

// builtinPrefix starts the file name of a built-in profile in positions,
// as the library names them ("profile default").
const builtinPrefix = "profile "

// DefaultLoader resolves a reference that contains a path separator or ends
// in .yaml, .yml or .json as a file, relative to the directory of the
// policy that names it (the working directory for standard input), and any
// other reference as the name of a built-in profile (package profiles). A
// built-in profile may extend only built-in profiles.
type DefaultLoader struct{}

// IsPath reports whether an extends reference names a file rather than a
// built-in profile: it contains "/" (or the OS's separator) or ends in
// .yaml, .yml or .json.
func IsPath(ref string) bool {
	if strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator) {
		return true
	}
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		if strings.HasSuffix(ref, ext) {
			return true
		}
	}
	return false
}

// Load implements Loader.
func (DefaultLoader) Load(ref, from string) ([]byte, string, error) {
	if !IsPath(ref) {
		data, err := profiles.Get(ref)
		if err != nil {
			return nil, "", err
		}
		return data, builtinPrefix + ref, nil
	}
	if strings.HasPrefix(from, builtinPrefix) {
		return nil, "", fmt.Errorf("a built-in profile extends only built-in profiles, not files")
	}
	file := ref
	if !filepath.IsAbs(ref) && from != "" && from != "-" {
		file = filepath.Join(filepath.Dir(from), ref)
	}
	file = filepath.Clean(file)
	data, err := readlimit.File(file)
	if err != nil {
		return nil, "", err
	}
	return data, file, nil
}

// ParseWith is Parse with the bases of "extends" found by l.
func ParseWith(data []byte, filename string, l Loader) (*Policy, error) {
	c := &composer{loader: l, docs: map[string]*doc{}}
	d, errs := c.parse(data, filename, nil)
	if len(errs) > 0 {
		return nil, sortErrors(errs)
	}
	return c.flatten(d), nil
}

// doc is one parsed policy file before flattening.
type doc struct {
	p       *Policy // own rules only; Default as written
	bases   []*doc
	refs    []string // as written, one per base
	hasDflt bool
}

// composer parses a policy and its bases, each file once.
type composer struct {
	loader Loader
	docs   map[string]*doc // by file name, parsed ones
}

// extendsRef is one entry of an extends list, with where it was written.
type extendsRef struct {
	ref  string
	node *yaml.Node
}

// parse parses one file and, recursively, its bases. chain holds the files
// being parsed above this one, for cycle detection.
func (c *composer) parse(data []byte, file string, chain []string) (*doc, ErrorList) {
	rd := &reader{FileErrors: FileErrors{File: file}}
	p := rd.policy(data)
	if len(rd.Errs) > 0 {
		return nil, rd.Errs
	}
	d := &doc{p: p, hasDflt: rd.haveDefault}
	chain = append(chain, sameFile(file))
	var errs ErrorList
	for _, e := range rd.extends {
		data, bfile, err := c.loader.Load(e.ref, file)
		if err != nil {
			errs = append(errs, &Error{Pos: rd.At(e.node), Msg: fmt.Sprintf("extends %q: %v", e.ref, err)})
			continue
		}
		if i := indexOf(chain, sameFile(bfile)); i >= 0 {
			cyc := append(append([]string(nil), chain[i:]...), bfile)
			errs = append(errs, &Error{Pos: rd.At(e.node), Msg: fmt.Sprintf("extends %q makes a cycle: %s",
				e.ref, strings.Join(cyc, " extends "))})
			continue
		}
		b, ok := c.docs[bfile]
		if !ok {
			var berrs ErrorList
			b, berrs = c.parse(data, bfile, chain)
			if len(berrs) > 0 {
				errs = append(errs, &Error{Pos: rd.At(e.node), Msg: fmt.Sprintf("extends %q: the base %s has errors", e.ref, bfile)})
				errs = append(errs, berrs...)
				continue
			}
			c.docs[bfile] = b
		}
		d.bases = append(d.bases, b)
		d.refs = append(d.refs, e.ref)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !d.hasDflt && len(d.bases) > 0 {
		dflt, ok := baseDefault(d)
		if !ok {
			var parts []string
			for i, b := range d.bases {
				bd, _ := baseDefault(b)
				parts = append(parts, fmt.Sprintf("%s has %s", d.refs[i], bd))
			}
			return nil, ErrorList{{Pos: rd.At(rd.extendsKey), Msg: fmt.Sprintf("the bases disagree on the default (%s): "+
				"write \"default: deny\" (or allow) in this policy", strings.Join(parts, ", "))}}
		}
		d.p.Default = dflt
	}
	if d.p.Register == nil {
		reg, err := baseRegister(d)
		if err != "" {
			return nil, ErrorList{{Pos: rd.At(rd.extendsKey), Msg: err}}
		}
		d.p.Register = reg
	}
	return d, nil
}

// baseRegister returns the register section d's bases give it when it has
// none of its own: the one section the bases that have one agree on, or
// nil when none has one; else a message saying which disagree. (Bases are
// already resolved: their Register is their own or their bases'.)
func baseRegister(d *doc) (*Register, string) {
	var reg *Register
	var from string
	for i, b := range d.bases {
		r := b.p.Register
		if r == nil {
			continue
		}
		if reg == nil {
			reg, from = r, d.refs[i]
			continue
		}
		if !sameRegisterOps(reg, r) {
			return nil, fmt.Sprintf("the bases %s and %s allow different register operations: "+
				"write a register section in this policy", from, d.refs[i])
		}
	}
	return reg, ""
}

// sameRegisterOps reports whether a and b allow the same operations.
func sameRegisterOps(a, b *Register) bool {
	if len(a.Allow) != len(b.Allow) {
		return false
	}
	for _, op := range a.Allow {
		found := false
		for _, o := range b.Allow {
			if o == op {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// baseDefault returns the default d stands for when extended: its own, or
// its bases' when they agree.
func baseDefault(d *doc) (Action, bool) {
	if d.hasDflt || len(d.bases) == 0 {
		return d.p.Default, true
	}
	first, ok := baseDefault(d.bases[0])
	if !ok {
		return first, false
	}
	for _, b := range d.bases[1:] {
		a, ok := baseDefault(b)
		if !ok || a != first {
			return first, false
		}
	}
	return first, true
}

// sameFile returns the form of a file name under which two names of one
// file compare equal ("./a.yaml" and "a.yaml"); built-in names as they are.
func sameFile(name string) string {
	if strings.HasPrefix(name, builtinPrefix) || name == "" || name == "-" {
		return name
	}
	return filepath.Clean(name)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// flatten returns d as one policy: own rules, then each base's rules (each
// base once, at its first place), with From set on inherited rules.
func (c *composer) flatten(d *doc) *Policy {
	p := *d.p
	p.Rules = append([]Rule(nil), d.p.Rules...)
	seen := map[*doc]bool{d: true}
	var add func(b *doc, from string)
	add = func(b *doc, from string) {
		if seen[b] {
			return
		}
		seen[b] = true
		for _, r := range b.p.Rules {
			r.From = from
			p.Rules = append(p.Rules, r)
		}
		for i, bb := range b.bases {
			add(bb, b.refs[i])
		}
	}
	for i, b := range d.bases {
		add(b, d.refs[i])
	}
	p.Extends = append([]string(nil), d.refs...)
	return &p
}

// extendsList parses the extends key: a reference or a list of them.
func (rd *reader) extendsList(k, n *yaml.Node) {
	rd.extendsKey = k
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			rd.Errorf(n, "extends is empty: name a built-in profile (default) or a file (./base.yaml), or leave extends out")
			return
		}
	}
	seen := map[string]int{}
	for _, it := range items {
		if it.Kind != yaml.ScalarNode || it.Tag != "!!str" || strings.TrimSpace(it.Value) == "" {
			rd.Errorf(it, "extends names a built-in profile (default) or a file (./base.yaml), got %s", kindName(it))
			continue
		}
		if line, dup := seen[it.Value]; dup {
			rd.Errorf(it, "%q is extended twice (first on line %d)", it.Value, line)
			continue
		}
		seen[it.Value] = it.Line
		rd.extends = append(rd.extends, extendsRef{ref: it.Value, node: it})
	}
}
