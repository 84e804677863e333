package ocitest

import (
	"os"
	"path/filepath"
	"testing"
)

// OutsideSecret is the content of the file outside the policy directory
// of PolicyDir: an error that quotes it leaked a host file.
const OutsideSecret = "SECRET-CONTENT-OUTSIDE"

// PolicyDirRule names the rule of the policy files of PolicyDir.
const PolicyDirRule = "from-policy-dir"

// PolicyFileCase is an annotation value naming policy files, and the
// part of the refusal expected ("" when accepted).
type PolicyFileCase struct {
	Name, Value, Err string
}

// PolicyDir makes a trusted policy directory with files an annotation may
// and may not name, and returns it with the cases that exercise it: the
// accepted forms, and each form that must be refused (a name outside the
// directory, a ".." escape, a symbolic link out, a FIFO, a device, a
// directory, and the same through extends). It needs root for the device
// node (tests run as root in CI and in the VMs).
func PolicyDir(t *testing.T) (dir string, cases []PolicyFileCase) {
	t.Helper()
	top := t.TempDir()
	dir = filepath.Join(top, "policies")
	outside := filepath.Join(top, "outside.yaml")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const good = "version: 1\ndefault: deny\nrules:\n  - name: " + PolicyDirRule + "\n    ops: [READ]\n    action: allow\n"
	write(outside, OutsideSecret+": [\n")
	write(filepath.Join(dir, "p.yaml"), good)
	write(filepath.Join(dir, "sub", "q.yaml"), good)
	write(filepath.Join(dir, "sub", "ext.yaml"), "version: 1\nextends: q.yaml\n")
	write(filepath.Join(dir, "leak.yaml"), "version: 1\nextends: ../outside.yaml\n")
	for _, l := range [][2]string{{outside, "out.yaml"}, {"p.yaml", "in.yaml"}, {top, "updir"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	makeSpecialFiles(t, dir)
	const escape = "outside the policy directory"
	const link = "must resolve inside the policy directory"
	const irregular = "not a regular file"
	return dir, []PolicyFileCase{
		{"relative", "p.yaml", ""},
		{"subdirectory", "sub/q.yaml", ""},
		{"absolute inside", filepath.Join(dir, "p.yaml"), ""},
		{"symlink inside", "in.yaml", ""},
		{"file extends file", "sub/ext.yaml", ""},
		{"inline extends file", "version: 1\nextends: sub/q.yaml\n", ""},
		{"inline extends profile", "version: 1\nextends: default\n", ""},
		{"absolute outside", outside, escape},
		{"dot-dot escape", "../outside.yaml", escape},
		{"symlink out", "out.yaml", link},
		{"symlinked directory out", "updir/outside.yaml", link},
		{"fifo", "fifo.yaml", irregular},
		{"device", "null.yaml", irregular},
		{"directory", "sub", irregular},
		{"host file", "/etc/passwd", escape},
		{"inline extends outside", "version: 1\nextends: " + outside + "\n", escape},
		{"inline extends escape", "version: 1\nextends: ../outside.yaml\n", escape},
		{"inline extends symlink out", "version: 1\nextends: out.yaml\n", link},
		{"inline extends fifo", "version: 1\nextends: fifo.yaml\n", irregular},
		{"file extends escape", "leak.yaml", escape},
	}
}
