package readlimit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zeros is an endless reader, like /dev/zero.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

func TestReader(t *testing.T) {
	for _, n := range []int{0, 1, Max} {
		data, err := Reader(bytes.NewReader(make([]byte, n)), "x")
		if err != nil || len(data) != n {
			t.Errorf("%d bytes: got %d, %v", n, len(data), err)
		}
	}
	_, err := Reader(bytes.NewReader(make([]byte, Max+1)), "big.yaml")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.yaml: input too large: more than 16 MiB") {
		t.Errorf("Max+1 bytes: %v", err)
	}
	z := &zeros{}
	if _, err := Reader(z, "endless"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("endless input: %v", err)
	}
	if z.n > 2*Max {
		t.Errorf("read %d bytes of an endless input, want about %d", z.n, Max)
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := File(p); err != nil || string(data) != "version: 1\n" {
		t.Errorf("File = %q, %v", data, err)
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := File("/dev/zero"); !errors.Is(err, ErrTooLarge) {
			t.Errorf("/dev/zero: %v", err)
		}
	}
}

var _ io.Reader = (*zeros)(nil)
