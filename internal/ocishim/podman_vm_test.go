package ocishim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// TestPodman runs containers with the real Podman (its own
// containers-common seccomp profile, conmon, crun), through
// "podman run --rootfs DIR --runtime ringfence-runtime"; the shim finds
// the real runtime in /etc/ringfence/runtime.yaml.
func TestPodman(t *testing.T) {
	vmtest.Require(t)
	r := newRT(t, "crun")
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman is not in the guest userland: %v", err)
	}
	if err := os.MkdirAll("/etc/ringfence", 0o755); err != nil {
		t.Fatal(err)
	}
	// No seccompCheck: the default, refuse. The built-in profile must pass
	// the bypass check under the real Podman's profile (Debian's
	// containers-common, which denies futex_waitv: "base" leaves
	// FUTEX_WAITV out for it); the refusal is tested below with AF_VSOCK.
	if err := os.WriteFile(DefaultConfigPath, []byte("runtime: "+r.path+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(DefaultConfigPath)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(r.bundle(t, "probe", nil), "rootfs")
	// On 6.19 pivot_root out of the guest's initramfs root fails with
	// EINVAL (not on 7.x): tell Podman not to pivot there.
	var env []string
	if ocitest.NoPivot() {
		conf := filepath.Join(t.TempDir(), "nopivot.conf")
		if err := os.WriteFile(conf, []byte("[engine]\nno_pivot_root = true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		env = append(env, "CONTAINERS_CONF_OVERRIDE="+conf)
	}
	pod := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(podman, args...)
		cmd.Env = append(os.Environ(), env...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("podman %q: %v", args, err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	common := func(role string, extra ...string) []string {
		a := []string{"--runtime", r.shim, "--network", "none", "-e", ocitest.RoleEnv + "=" + role, "-v", self + ":/probe:ro"}
		return append(a, extra...)
	}
	// Without a policy: Podman's profile answers io_uring_setup with ENOSYS.
	out, errs, code := pod(append(append([]string{"run", "--rm"}, common("probe")...), "--rootfs", rootfs, "/probe")...)
	if code != 0 {
		t.Fatalf("podman run: exit %d: %s", code, errs)
	}
	if rep := ocitest.ParseReport(t, out); !strings.Contains(rep.Setup, "function not implemented") {
		t.Fatalf("without a policy: %+v; want io_uring_setup refused with ENOSYS by Podman's profile", rep)
	}
	ann := "--annotation=" + ocifence.PolicyKey + "=profile:storage"
	if !ocitest.KernelFences(t) {
		out, errs, code := pod(append(append([]string{"run", "--rm"}, common("probe", ann)...), "--rootfs", rootfs, "/probe")...)
		if code == 0 || out != "" || !strings.Contains(errs, "this kernel cannot fence the container") {
			t.Fatalf("podman run with a policy on %s: exit %d, stdout %q, stderr %q; want a refusal", vmtest.Release(), code, out, errs)
		}
		return
	}
	out, errs, code = pod(append(append([]string{"run", "--rm"}, common("probe", ann)...), "--rootfs", rootfs, "/probe")...)
	if code != 0 {
		t.Fatalf("podman run with a policy: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "podman run", ocitest.ParseReport(t, out))
	// podman exec into the fenced container is fenced too.
	_, errs, code = pod(append(append([]string{"run", "-d", "--name", "long"}, common("sleep", ann)...), "--rootfs", rootfs, "/probe")...)
	if code != 0 {
		t.Fatalf("podman run -d: exit %d: %s", code, errs)
	}
	defer pod("rm", "-f", "-t", "0", "long")
	out, errs, code = pod("exec", "-e", ocitest.RoleEnv+"=probe", "long", "/probe")
	if code != 0 {
		t.Fatalf("podman exec: exit %d: %s", code, errs)
	}
	ocitest.CheckFenced(t, "podman exec", ocitest.ParseReport(t, out))
	// A policy that lets io_uring open AF_VSOCK sockets, which Podman's
	// profile denies as socket(2), is refused (the default seccompCheck).
	vsock := "--annotation=" + ocifence.PolicyKey + "=version: 1\ndefault: deny\nrules:\n  - name: sockets\n    ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_UNIX, AF_VSOCK]\n"
	out, errs, code = pod(append(append([]string{"run", "--rm"}, common("probe", vsock)...), "--rootfs", rootfs, "/probe")...)
	if code == 0 || out != "" || !strings.Contains(errs, "the policy lets io_uring do what the container's seccomp profile forbids") || !strings.Contains(errs, "socket") {
		t.Errorf("AF_VSOCK policy: exit %d, stdout %q, stderr %q; want a refusal naming socket", code, out, errs)
	}
	// A bad policy fails the container with its line and column.
	bad := "--annotation=" + ocifence.PolicyKey + "=version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_INTE\n"
	out, errs, code = pod(append(append([]string{"run", "--rm"}, common("probe", bad)...), "--rootfs", rootfs, "/probe")...)
	if code == 0 || out != "" || !strings.Contains(errs, "annotation org.ringfence.policy:7:22:") {
		t.Errorf("bad policy: exit %d, stdout %q, stderr %q; want a refusal with 7:22", code, out, errs)
	}
}
