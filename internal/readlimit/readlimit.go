// Package readlimit reads ringfence's inputs (policies, cases files,
// programs, OCI configurations, seccomp profiles) with a size limit, so
// that a huge or endless input (/dev/zero) is an error that says so, not
// gigabytes of memory.
package readlimit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Max is the largest input ringfence reads whole: 16 MiB, far above any
// real policy (the largest built-in profile is under 4 KiB; a policy at the
// kernel's limits, 65 opcodes with 4096-instruction filters, is well under
// 1 MiB).
const Max = 16 << 20

// ErrTooLarge is wrapped by the errors of inputs larger than Max.
var ErrTooLarge = errors.New("input too large")

// File reads the file at path, failing for more than Max bytes.
func File(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Reader(f, path)
}

// Reader reads r to its end, failing for more than Max bytes; name names
// the input in the error.
func Reader(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, Max+1))
	if err != nil {
		return nil, err
	}
	if len(data) > Max {
		return nil, fmt.Errorf("%s: %w: more than %d MiB (ringfence reads inputs of at most %d MiB)", name, ErrTooLarge, Max>>20, Max>>20)
	}
	return data, nil
}
