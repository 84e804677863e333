package asm

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in an assembly source: 1-based line and 1-based byte
// column.
type Pos struct {
	Line, Col int
}

// Error is one assembly error, located at a line and column of a file.
type Error struct {
	File string // the file name given to Assemble
	Line int    // 1-based line
	Col  int    // 1-based byte column
	Msg  string // what was wrong, without the position
}

// Error returns "file:line:col: message", or "line:col: message" when File
// is empty.
func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrorList is every error found in one source, sorted by line, then
// column, then message. Assemble returns it as its error when there is at
// least one.
type ErrorList []*Error

// Error returns the errors, one per line.
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

// sortErrors orders errors by position so that output never depends on the
// order they were found in.
func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Msg < b.Msg
	})
}
