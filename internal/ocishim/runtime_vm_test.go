package ocishim

// Tests of ringfence-runtime with the real ringfence binary, real runc,
// crun and Podman from the Debian guest userland, on real kernels inside
// the VM harness. The container's program is this test binary, mounted at
// /probe, in the role RINGFENCE_OCITEST_ROLE=probe: it submits io_uring
// requests and prints what the kernel answered.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

func init() { ocitest.Dispatch() }

// rt is one real runtime under test.
type rt struct {
	name, path string
	shim       string // ringfence-runtime: a link to the real ringfence binary
	root       string // --root of the runtime's state
}

func newRT(t *testing.T, name string) *rt {
	t.Helper()
	vmtest.Require(t)
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not in the guest userland: %v", name, err)
	}
	rf, err := exec.LookPath("ringfence")
	if err != nil {
		t.Fatalf("the real ringfence binary is not in the guest: %v", err)
	}
	dir := t.TempDir()
	shim := filepath.Join(dir, Name)
	if err := os.Symlink(rf, shim); err != nil {
		t.Fatal(err)
	}
	return &rt{name: name, path: path, shim: shim, root: filepath.Join(dir, "state")}
}

// bundle writes a bundle running the probe with Docker's default seccomp
// profile and the annotations.
func (r *rt) bundle(t *testing.T, role string, ann map[string]string) string {
	t.Helper()
	return ocitest.Bundle(t, role, ocitest.DockerSeccomp(t), ann)
}

// run runs bin with the runtime's global flags and args; RINGFENCE_RUNTIME
// names the real runtime for the shim.
func (r *rt) run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := append([]string{"--root", r.root}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), RuntimeEnv+"="+r.path)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s %q: %v", bin, argv, err)
	}
	return o.String(), e.String(), code
}

// detach runs the bundle b as container id through the shim, detached,
// and deletes it when the test ends.
func (r *rt) detach(t *testing.T, b, id string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(b, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(r.shim, "--root", r.root, "run", "--detach", "--bundle", b, id)
	cmd.Env = append(os.Environ(), RuntimeEnv+"="+r.path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(filepath.Join(b, "out"))
		t.Fatalf("shim run --detach: %v: %s", err, data)
	}
	t.Cleanup(func() { r.run(t, r.shim, "delete", "--force", id) })
}

func storage() map[string]string { return map[string]string{ocifence.PolicyKey: "profile:storage"} }

func testRuntime(t *testing.T, name string) {
	r := newRT(t, name)
	// Without the shim: Docker's profile blocks io_uring_setup (EPERM).
	// On 6.19 pivot_root out of the guest's initramfs root fails with
	// EINVAL (not on 7.x), so the runtime is asked not to pivot there.
	plain := []string{"run", "--bundle", r.bundle(t, "probe", storage()), "plain"}
	if ocitest.NoPivot() {
		plain = append([]string{"run", "--no-pivot"}, plain[1:]...)
	}
	out, errs, code := r.run(t, r.path, plain...)
	if code != 0 {
		t.Fatalf("%s run without the shim: exit %d: %s", name, code, errs)
	}
	// (Filtered is not asked here: with io_uring_register answering
	// EPERM from seccomp, the task-restriction probe cannot tell.)
	if rep := ocitest.ParseReport(t, out); !strings.Contains(rep.Setup, "operation not permitted") || len(rep.Results) != 0 {
		t.Fatalf("without the shim: %+v; want io_uring_setup refused with EPERM by Docker's profile", rep)
	}
	r.run(t, r.path, "delete", "--force", "plain")
	if !ocitest.KernelFences(t) {
		// Fail closed: create refuses, and no container exists.
		b := r.bundle(t, "probe", storage())
		out, errs, code := r.run(t, r.shim, "create", "--bundle", b, "nofence")
		if code == 0 || !strings.Contains(errs, "this kernel cannot fence the container") {
			t.Fatalf("create on %s: exit %d, stdout %q, stderr %q; want a refusal saying why", vmtest.Release(), code, out, errs)
		}
		if _, _, code := r.run(t, r.path, "state", "nofence"); code == 0 {
			t.Fatal("the container exists after the shim refused to create it")
		}
		t.Logf("on %s: %s", vmtest.Release(), strings.TrimSpace(errs))
		return
	}
	// With the shim and the storage profile: allowed requests succeed,
	// denied ones get -EACCES, all from a filtered task.
	b := r.bundle(t, "probe", storage())
	out, errs, code = r.run(t, r.shim, "--log", filepath.Join(b, "log.json"), "--log-format", "json", "run", "--bundle", b, "fenced")
	if code != 0 {
		t.Fatalf("shim run: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "run", ocitest.ParseReport(t, out))
	r.run(t, r.shim, "delete", "--force", "fenced")
	// Without the annotation the shim passes the bundle through: io_uring
	// stays blocked as before.
	out, errs, code = r.run(t, r.shim, "run", "--bundle", r.bundle(t, "probe", nil), "unannotated")
	if rep := ocitest.ParseReport(t, out); code != 0 || !strings.Contains(rep.Setup, "operation not permitted") {
		t.Fatalf("unannotated container through the shim: exit %d %+v %s", code, rep, errs)
	}
	r.run(t, r.shim, "delete", "--force", "unannotated")
	// exec into a fenced container is fenced too, with a command and
	// with a process file.
	b = r.bundle(t, "sleep", storage())
	r.detach(t, b, "long")
	out, errs, code = r.run(t, r.shim, "exec", "--env", ocitest.RoleEnv+"=probe", "long", "/probe")
	if code != 0 {
		t.Fatalf("shim exec: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "exec", ocitest.ParseReport(t, out))
	proc := filepath.Join(t.TempDir(), "process.json")
	pj, _ := json.Marshal(specs.Process{Args: []string{"/probe"}, Env: []string{"PATH=/bin", ocitest.RoleEnv + "=probe"}, Cwd: "/"})
	os.WriteFile(proc, pj, 0o644)
	out, errs, code = r.run(t, r.shim, "exec", "--process", proc, "long")
	if code != 0 {
		t.Fatalf("shim exec --process: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "exec --process", ocitest.ParseReport(t, out))
	// state and kill pass through to the real runtime.
	out, _, code = r.run(t, r.shim, "state", "long")
	var st specs.State
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Status != "running" || st.Bundle != b {
		t.Errorf("shim state: exit %d %v %+v", code, err, st)
	}
	// A bad policy fails create with its line and column.
	bad := map[string]string{ocifence.PolicyKey: "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_INTE\n"}
	_, errs, code = r.run(t, r.shim, "create", "--bundle", r.bundle(t, "probe", bad), "bad")
	if code == 0 || !strings.Contains(errs, "annotation org.ringfence.policy:7:22:") {
		t.Errorf("bad policy: exit %d, stderr %q; want a refusal with 7:22", code, errs)
	}
	if _, _, code := r.run(t, r.path, "state", "bad"); code == 0 {
		t.Error("the container with a bad policy exists")
	}
}

// TestRunc runs the shim over the real runc.
func TestRunc(t *testing.T) { testRuntime(t, "runc") }

// TestCrun runs the shim over the real crun.
func TestCrun(t *testing.T) { testRuntime(t, "crun") }

// TestRuncFloor: with runtime.yaml's floor set to the storage profile, a
// container whose annotation names a policy that allows everything is
// held by storage all the same (the two runs' filters stack in the real
// kernel), and so is a process exec'd into it.
func TestRuncFloor(t *testing.T) {
	r := newRT(t, "runc")
	if err := os.MkdirAll(filepath.Dir(DefaultConfigPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(DefaultConfigPath, []byte("floor: profile:storage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(DefaultConfigPath)
	allowAll := map[string]string{ocifence.PolicyKey: "version: 1\ndefault: allow\n"}
	if !ocitest.KernelFences(t) {
		_, errs, code := r.run(t, r.shim, "create", "--bundle", r.bundle(t, "probe", allowAll), "nofence")
		if code == 0 || !strings.Contains(errs, "this kernel cannot fence the container") {
			t.Fatalf("create on %s: exit %d, stderr %q; want a refusal", vmtest.Release(), code, errs)
		}
		return
	}
	out, errs, code := r.run(t, r.shim, "run", "--bundle", r.bundle(t, "probe", allowAll), "floored")
	if code != 0 {
		t.Fatalf("shim run: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "run under the floor", ocitest.ParseReport(t, out))
	r.run(t, r.shim, "delete", "--force", "floored")
	r.detach(t, r.bundle(t, "sleep", allowAll), "long")
	out, errs, code = r.run(t, r.shim, "exec", "--env", ocitest.RoleEnv+"=probe", "long", "/probe")
	if code != 0 {
		t.Fatalf("shim exec: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "exec under the floor", ocitest.ParseReport(t, out))
}
