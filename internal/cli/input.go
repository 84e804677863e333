package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// readInput reads path, or standard input for "-", and returns the name
// to use in messages.
func (e *env) readInput(path string) ([]byte, string, error) {
	if path == "-" {
		data, err := readlimit.Reader(e.stdin, "<stdin>")
		return data, "<stdin>", err
	}
	data, err := readlimit.File(path)
	return data, path, err
}

// readPolicy reads a policy argument: a file, "-" for standard input, or
// "profile:NAME" for a built-in profile. It returns the text and the name
// to use in messages.
func (e *env) readPolicy(arg string) ([]byte, string, error) {
	if name, ok := strings.CutPrefix(arg, "profile:"); ok {
		data, err := profiles.Get(name)
		return data, "profile " + name, err
	}
	return e.readInput(arg)
}

// loadPolicy reads and parses a policy argument (see readPolicy).
func (e *env) loadPolicy(arg string) (*policy.Policy, []byte, string, error) {
	data, name, err := e.readPolicy(arg)
	if err != nil {
		return nil, nil, "", err
	}
	p, err := policy.Parse(data, name)
	return p, data, name, err
}

// writeOutput writes data to the file path, or to standard output when
// path is "".
func (e *env) writeOutput(path string, data []byte) error {
	if path == "" {
		_, err := e.stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// selfArgv returns the path of this executable and the argv that runs its
// command cmd. Nothing from the environment changes it: a test binary that
// plays ringfence's part dispatches the command names in its TestMain.
func selfArgv(cmd string) (string, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("cannot find ringfence's own executable: %w", err)
	}
	return self, []string{self, cmd}, nil
}
