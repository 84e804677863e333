package nriplugin

// The NRI plugin's adjustments run for real: NRI's runtime side adjusts a
// container's spec through the plugin, NRI's generator applies it, and
// Debian's runc runs the result with the real ringfence binary on a real
// kernel inside the VM harness.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

func init() { ocitest.Dispatch() }

// nriContainer is NRI's view of a container with spec.
func nriContainer(name string, spec *specs.Spec) *api.Container {
	ctr := &api.Container{
		Id: "ctr-" + name, PodSandboxId: "pod1", Name: name,
		Args:  spec.Process.Args,
		Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: api.SecurityProfile_RUNTIME_DEFAULT}},
	}
	for _, m := range spec.Mounts {
		ctr.Mounts = append(ctr.Mounts, &api.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
	}
	if spec.Linux.Seccomp != nil {
		ctr.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(spec.Linux.Seccomp)
	}
	return ctr
}

// TestNRIFencedContainerRuns: a container adjusted by the plugin, run by
// the real runc, is fenced: allowed requests succeed, AF_INET sockets get
// -EACCES. On a kernel that cannot fence, the creation fails.
func TestNRIFencedContainerRuns(t *testing.T) {
	vmtest.Require(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc is not in the guest userland: %v", err)
	}
	rf, err := exec.LookPath("ringfence")
	if err != nil {
		t.Fatalf("the real ringfence binary is not in the guest: %v", err)
	}
	p, err := New(Config{Binary: rf, PolicyDir: t.TempDir(), Kernel: ringfence.Host()})
	if err != nil {
		t.Fatal(err)
	}
	r := runtime(t, p, nil)
	root := t.TempDir()
	for _, c := range []struct {
		name   string
		ann    map[string]string
		fenced bool
	}{
		{"plain", nil, false},
		{"fenced", map[string]string{ocifence.PolicyKey: "profile:storage"}, true},
	} {
		dir := t.TempDir()
		spec := ocitest.Spec(t, ocitest.Rootfs(t, dir), "probe", ocitest.DockerSeccomp(t), nil)
		err := create(t, r, pod(c.ann), spec, nriContainer(c.name, spec))
		if c.fenced && !ocitest.KernelFences(t) {
			if err == nil || !strings.Contains(err.Error(), "this kernel cannot fence the container") {
				t.Fatalf("%s on %s: %v; want the creation refused", c.name, vmtest.Release(), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ocitest.WriteBundle(t, dir, spec)
		args := []string{"--root", root, "run", "--bundle", dir, c.name}
		if ocitest.NoPivot() {
			args = []string{"--root", root, "run", "--no-pivot", "--bundle", dir, c.name}
		}
		cmd := exec.Command(runc, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: runc run: %v: %s", c.name, err, e.String())
		}
		exec.Command(runc, "--root", root, "delete", "--force", c.name).Run()
		rep := ocitest.ParseReport(t, o.String())
		if !c.fenced {
			if !strings.Contains(rep.Setup, "operation not permitted") {
				t.Errorf("plain: %+v; want io_uring_setup refused with EPERM by Docker's profile", rep)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			t.Fatal(err)
		}
		ocitest.CheckFenced(t, "NRI-adjusted container under runc", rep)
	}
}
