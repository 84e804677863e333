package policy

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a policy or cases file, at a place.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "file:line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in one file, sorted by position. Parse
// returns all of them at once as one error value.
type ErrorList []*Error

// Error returns the errors one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sortErrors orders errors by position, keeping the order of errors at the
// same place, and drops exact duplicates.
func sortErrors(l ErrorList) ErrorList {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Pos.Before(l[j].Pos) })
	out := l[:0]
	for i, e := range l {
		if i > 0 && e.Pos == l[i-1].Pos && e.Msg == l[i-1].Msg {
			continue
		}
		out = append(out, e)
	}
	return out
}

// FileErrors collects the errors found while reading one YAML or JSON
// file, each at its place, for a parser that walks the file's yaml.Node
// tree: policy and cases files here, seccomp profiles in package
// seccompprofile. A parser embeds it; the zero value with File set is
// ready to use.
type FileErrors struct {
	// File is the file's name as positions print it.
	File string
	// Errs are the errors in the order recorded.
	Errs ErrorList
}

// At returns the position of n in the file.
func (fe *FileErrors) At(n *yaml.Node) Pos {
	return Pos{File: fe.File, Line: n.Line, Col: n.Column}
}

// Errorf records an error at n.
func (fe *FileErrors) Errorf(n *yaml.Node, format string, args ...any) {
	fe.ErrorAt(fe.At(n), format, args...)
}

// ErrorAt records an error at p.
func (fe *FileErrors) ErrorAt(p Pos, format string, args ...any) {
	fe.Errs = append(fe.Errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}
