package containerdtest

// A real containerd is started in the guest with a configuration that
// registers ringfence-runtime as the runtime handler "ringfence" and
// enables NRI on a socket of its own. The tests then act as the kubelet:
// through the CRI API they run a pod sandbox and a container whose image
// holds this test binary as /probe (ocitest's probe, which submits
// io_uring requests and prints what the kernel answered), with
// containerd's RuntimeDefault seccomp profile.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/internal/vminit"
	"github.com/ringfence/ringfence/kernel"
)

func init() { ocitest.Dispatch() }

// image is the name of the test image: the sandbox's and the containers'.
const image = "localhost/ringfence-probe:test"

// ctrd is a containerd running in the guest for one test.
type ctrd struct {
	dir, sock, nriSock, log string
	rt                      cri.RuntimeServiceClient
	build                   build
	// major and minor are the version containerd reports through CRI.
	major, minor int
}

// build is one containerd the tests run.
type build struct {
	// name names the subtest.
	name string
	// dir holds containerd and containerd-shim-runc-v2; it goes first
	// on containerd's PATH, so containerd starts the shim from there.
	dir string
	// version is the start of the version containerd must report.
	version string
}

// builds returns the containerds in the guest: Debian's, from the
// userland, and those the VM harness builds from source through the Go
// module proxy (vm.ContainerdVersions, oldest first) and puts under
// vminit.ContainerdDir.
func builds() []build {
	bs := []build{{name: "debian-2.1", dir: "/usr/bin", version: "2.1."}}
	for _, v := range vm.ContainerdVersions() {
		bs = append(bs, build{name: "source-" + v, dir: path.Join(vminit.ContainerdDir, v), version: v})
	}
	return bs
}

// eachContainerd runs f as a subtest under each containerd of bs.
func eachContainerd(t *testing.T, bs []build, f func(t *testing.T, c *ctrd)) {
	for _, b := range bs {
		t.Run(b.name, func(t *testing.T) { f(t, start(t, b)) })
	}
}

// config is containerd's configuration (version 3, containerd 2.x): the
// native snapshotter (overlayfs is a module the guest does not load), the
// test image as the sandbox image, NRI on its own socket, and the
// handler "ringfence" as deploy/containerd-ringfence.toml has it, with
// cgroupfs instead of systemd (the guest has no systemd).
const config = `version = 3
root = "%[1]s/root"
state = "%[1]s/state"

[grpc]
  address = "%[2]s"

[plugins.'io.containerd.nri.v1.nri']
  disable = false
  socket_path = "%[3]s"
  plugin_path = "%[1]s/nri-plugins"
  plugin_config_path = "%[1]s/nri-conf"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "native"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "%[4]s"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.ringfence]
    runtime_type = "io.containerd.runc.v2"
    pod_annotations = ["org.ringfence.*"]
    container_annotations = ["org.ringfence.*"]
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.ringfence.options]
      BinaryName = "%[5]s"
      SystemdCgroup = false
`

// start starts containerd b, imports the test image and connects to CRI.
func start(t *testing.T, b build) *ctrd {
	t.Helper()
	vmtest.Require(t)
	if err := kernel.Supported(); err != nil {
		// Kept short for the matrix: the shim's and the plugin's refusal
		// on such kernels is shown by their own VM tests on every kernel.
		t.Skipf("%s has no io_uring filters (%v): nothing for containerd to fence", vmtest.Release(), err)
	}
	bin := filepath.Join(b.dir, "containerd")
	for _, f := range []string{bin, filepath.Join(b.dir, "containerd-shim-runc-v2")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("containerd %s is not in the guest: %v", b.name, err)
		}
	}
	rf, err := exec.LookPath("ringfence")
	if err != nil {
		t.Fatalf("the real ringfence binary is not in the guest: %v", err)
	}
	dir, err := os.MkdirTemp("/tmp", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &ctrd{build: b, dir: dir, sock: filepath.Join(dir, "containerd.sock"), nriSock: filepath.Join(dir, "nri.sock"), log: filepath.Join(dir, "containerd.log")}
	shim := filepath.Join(dir, "ringfence-runtime")
	if err := os.Symlink(rf, shim); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, dir, c.sock, c.nriSock, image, shim)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = append(os.Environ(), "PATH="+b.dir+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(c.log)
			t.Logf("containerd's log:\n%s", tail(string(data), 60))
		}
	})
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.rt = cri.NewRuntimeServiceClient(conn)
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		v, err := c.rt.Version(ctx(t), &cri.VersionRequest{})
		if err == nil {
			t.Logf("containerd %s, CRI %s", v.RuntimeVersion, v.RuntimeApiVersion)
			if _, err := fmt.Sscanf(strings.TrimPrefix(v.RuntimeVersion, "v"), "%d.%d.", &c.major, &c.minor); err != nil || !strings.HasPrefix(v.RuntimeVersion, b.version) {
				t.Fatalf("%s reports version %q; want %s*", bin, v.RuntimeVersion, b.version)
			}
			break
		}
		if time.Now().After(end) {
			data, _ := os.ReadFile(c.log)
			t.Fatalf("containerd's CRI does not answer: %v\n%s", err, tail(string(data), 40))
		}
	}
	tarPath := filepath.Join(dir, "image.tar")
	writeImage(t, tarPath)
	if out, err := exec.Command("ctr", "--address", c.sock, "--namespace", "k8s.io", "images", "import", "--local", "--platform", "linux/amd64", "--snapshotter", "native", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v: %s", err, out)
	}
	return c
}

// checkShims fails t unless c's shims (the processes started with c's
// socket as their address) run the containerd-shim-runc-v2 of c's build,
// and at least one does.
func (c *ctrd) checkShims(t *testing.T) {
	t.Helper()
	want := filepath.Join(c.build.dir, "containerd-shim-runc-v2")
	procs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "\x00"+c.sock) {
			continue
		}
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || filepath.Base(exe) != "containerd-shim-runc-v2" {
			continue
		}
		if exe != want {
			env, _ := os.ReadFile(filepath.Join(p, "environ"))
			t.Errorf("containerd %s started the shim %s (environment %q); want %s", c.build.name, exe, env, want)
		}
		n++
	}
	if n == 0 {
		t.Errorf("containerd %s: no shim runs for %s", c.build.name, c.sock)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeImage writes an OCI image layout archive of the test image: one
// layer with this test binary at /probe and the mount points, the
// entrypoint /probe in the role "sleep" (the sandbox's program; containers
// set the role "probe").
func writeImage(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, d := range []string{"proc/", "dev/", "sys/", "tmp/", "etc/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Name: "probe", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(probe))})
	tw.Write(probe)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d, len(b)
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	layerDigest, layerSize := add(layer.Bytes())
	cfgDigest, cfgSize := add(js(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/probe"}, "Env": []string{"PATH=/usr/bin:/bin", ocitest.RoleEnv + "=sleep"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	}))
	manDigest, manSize := add(js(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": cfgSize},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	}))
	index := js(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manDigest, "size": manSize,
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": image, "org.opencontainers.image.ref.name": "test"},
		}},
	})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := tar.NewWriter(f)
	file := func(name string, b []byte) {
		out.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		out.Write(b)
	}
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", index)
	for d, b := range blobs {
		file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// pod is a pod sandbox run through CRI.
type pod struct {
	c   *ctrd
	id  string
	cfg *cri.PodSandboxConfig
}

// runPod runs a pod sandbox named name with the annotations under the
// runtime handler ("" for containerd's default, runc), on the node's
// network (no CNI in the guest).
func (c *ctrd) runPod(t *testing.T, name, handler string, ann map[string]string) *pod {
	t.Helper()
	logs := filepath.Join(c.dir, "logs", name)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "default"},
		LogDirectory: logs,
		Annotations:  ann,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
		}},
	}
	r, err := c.rt.RunPodSandbox(ctx(t), &cri.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox %s (handler %q): %v", name, handler, err)
	}
	p := &pod{c: c, id: r.PodSandboxId, cfg: cfg}
	t.Cleanup(func() {
		c.rt.StopPodSandbox(context.Background(), &cri.StopPodSandboxRequest{PodSandboxId: p.id})
		c.rt.RemovePodSandbox(context.Background(), &cri.RemovePodSandboxRequest{PodSandboxId: p.id})
	})
	return p
}

// create creates the container name in the pod, running the probe in
// role, with containerd's RuntimeDefault seccomp profile (Unconfined if
// the pod's name starts with "unconfined").
func (p *pod) create(t *testing.T, name, role string) (string, error) {
	seccomp := cri.SecurityProfile_RuntimeDefault
	if strings.HasPrefix(p.cfg.Metadata.Name, "unconfined") {
		seccomp = cri.SecurityProfile_Unconfined
	}
	t.Helper()
	r, err := p.c.rt.CreateContainer(ctx(t), &cri.CreateContainerRequest{
		PodSandboxId:  p.id,
		SandboxConfig: p.cfg,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: name},
			Image:    &cri.ImageSpec{Image: image},
			Envs:     []*cri.KeyValue{{Key: ocitest.RoleEnv, Value: []byte(role)}},
			LogPath:  name + ".log",
			Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
				Seccomp: &cri.SecurityProfile{ProfileType: seccomp},
			}},
		},
	})
	if err != nil {
		return "", err
	}
	return r.ContainerId, nil
}

// probe runs the probe as container name in the pod to its end and
// returns its report.
func (p *pod) probe(t *testing.T, name string) ocitest.Report {
	t.Helper()
	id, err := p.create(t, name, "probe")
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if _, err := p.c.rt.StartContainer(ctx(t), &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer %s: %v", name, err)
	}
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		s, err := p.c.rt.ContainerStatus(ctx(t), &cri.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatalf("ContainerStatus %s: %v", name, err)
		}
		if s.Status.State == cri.ContainerState_CONTAINER_EXITED {
			if s.Status.ExitCode != 0 {
				data, _ := os.ReadFile(filepath.Join(p.cfg.LogDirectory, name+".log"))
				t.Fatalf("%s exited with %d (%s): %s", name, s.Status.ExitCode, s.Status.Message, data)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%s still %v after 90s", name, s.Status.State)
		}
	}
	data, err := os.ReadFile(filepath.Join(p.cfg.LogDirectory, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return ocitest.ParseReport(t, criLog(string(data), "stdout"))
}

// checkProfileKept runs a long-lived container in p (a RuntimeDefault pod
// the NRI plugin fences) and checks the seccomp profile runc got: still
// containerd's default (deny by default, kexec_load not allowed), with
// the io_uring system calls allowed by the plugin.
func (p *pod) checkProfileKept(t *testing.T) {
	t.Helper()
	id, err := p.create(t, "long", "sleep")
	if err != nil {
		t.Fatalf("CreateContainer long: %v", err)
	}
	if _, err := p.c.rt.StartContainer(ctx(t), &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer long: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(p.c.dir, "state", "io.containerd.runtime.v2.task", "k8s.io", id, "config.json"))
	if err != nil {
		t.Fatalf("the container's bundle: %v", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	s := spec.Linux.Seccomp
	if s == nil || s.DefaultAction == specs.ActAllow {
		t.Fatalf("the fenced container's seccomp profile: %+v; want containerd's RuntimeDefault, kept", s)
	}
	allowed := map[string]bool{}
	for _, r := range s.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			for _, n := range r.Names {
				allowed[n] = true
			}
		}
	}
	for _, n := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register"} {
		if !allowed[n] {
			t.Errorf("the fenced container's seccomp profile does not allow %s", n)
		}
	}
	if allowed["kexec_load"] {
		t.Errorf("the fenced container's seccomp profile allows kexec_load: not containerd's RuntimeDefault any more")
	}
	t.Logf("the fenced container's profile: default %s, %d rules, io_uring allowed", s.DefaultAction, len(s.Syscalls))
}

// criLog returns the lines of stream in a CRI container log
// ("TIMESTAMP STREAM TAG MESSAGE" per line).
func criLog(log, stream string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) == 4 && f[1] == stream {
			b.WriteString(f[3] + "\n")
		}
	}
	return b.String()
}

// blocked checks a report of an unfenced container under RuntimeDefault:
// containerd 2's default profile refuses io_uring_setup with EPERM.
func blocked(t *testing.T, what string, r ocitest.Report) {
	t.Helper()
	if !strings.Contains(r.Setup, "operation not permitted") || len(r.Results) != 0 {
		t.Errorf("%s: %+v; want io_uring_setup refused with EPERM by containerd's RuntimeDefault profile", what, r)
	}
}

// badPolicy is a policy with an error at 7:22: an unknown socket family.
const badPolicy = "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_INTE\n"

func storage() map[string]string { return map[string]string{ocifence.PolicyKey: "profile:storage"} }

// TestContainerdRuntimeHandler: pods of the handler "ringfence" (the
// RuntimeClass route) whose annotation names the storage profile run
// fenced under containerd's RuntimeDefault profile: allowed requests
// succeed, AF_INET sockets get -EACCES, in the container's process and in
// one started by CRI's ExecSync (kubectl exec). The pod's sandbox runs
// unfenced, though containerd copied the pod's annotation into its spec
// (the shim recognises containerd's sandbox container). A pod without
// the annotation passes through: io_uring stays blocked. A bad policy
// fails the container's start with its line and column. On a kernel that
// cannot fence, the annotated container's creation fails with the shim's
// reason, through CRI. All of it under Debian's containerd 2.1 and under
// containerd 2.2 built from source, each with its own runc shim (the
// route does not depend on NRI, which is what the later versions change).
func TestContainerdRuntimeHandler(t *testing.T) { eachContainerd(t, builds()[:2], runtimeHandler) }

func runtimeHandler(t *testing.T, c *ctrd) {
	plain := c.runPod(t, "plain", "ringfence", nil)
	blocked(t, "unannotated pod under the ringfence handler", plain.probe(t, "probe"))
	c.checkShims(t)
	fenced := c.runPod(t, "fenced", "ringfence", storage())
	// The sandbox container got the pod's annotation (pod_annotations)
	// and runs, unfenced: the shim knows containerd's sandbox.
	data, err := os.ReadFile(filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", "k8s.io", fenced.id, "config.json"))
	if err != nil {
		t.Fatalf("the sandbox's bundle: %v", err)
	}
	var sb struct {
		Process     struct{ Args []string }
		Annotations map[string]string
	}
	if err := json.Unmarshal(data, &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Annotations[ocifence.PolicyKey] != "profile:storage" || sb.Annotations[ocifence.FencedKey] != "" || len(sb.Process.Args) == 0 || sb.Process.Args[0] != "/probe" {
		t.Errorf("sandbox config.json: args %q, annotations %v; want the pod's policy annotation and the sandbox left unfenced", sb.Process.Args, sb.Annotations)
	}
	if !ocitest.KernelFences(t) {
		id, err := fenced.create(t, "probe", "probe")
		if err == nil {
			_, err = c.rt.StartContainer(ctx(t), &cri.StartContainerRequest{ContainerId: id})
		}
		if err == nil || !strings.Contains(err.Error(), "this kernel cannot fence the container") {
			t.Fatalf("annotated container on %s: %v; want its creation refused with the shim's reason", vmtest.Release(), err)
		}
		t.Logf("on %s: %v", vmtest.Release(), err)
		return
	}
	ocitest.CheckFenced(t, "container under the ringfence handler", fenced.probe(t, "probe"))
	id, err := fenced.create(t, "long", "sleep")
	if err != nil {
		t.Fatalf("CreateContainer long: %v", err)
	}
	if _, err := c.rt.StartContainer(ctx(t), &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	r, err := c.rt.ExecSync(ctx(t), &cri.ExecSyncRequest{ContainerId: id, Cmd: []string{"/probe", ocitest.RoleEnv + "=probe"}, Timeout: 60})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("ExecSync: %v %+v", err, r)
	}
	ocitest.CheckFenced(t, "ExecSync into the fenced container", ocitest.ParseReport(t, string(r.Stdout)))
	// A bad policy: the container is created (CRI only records it) and
	// fails to start with the policy's line and column.
	bad := c.runPod(t, "bad", "ringfence", map[string]string{ocifence.PolicyKey: badPolicy})
	id, err = bad.create(t, "probe", "probe")
	if err != nil {
		t.Fatalf("CreateContainer with a bad policy: %v; containerd was expected to record it and leave the refusal to its start", err)
	}
	_, err = c.rt.StartContainer(ctx(t), &cri.StartContainerRequest{ContainerId: id})
	if err == nil || !strings.Contains(err.Error(), "annotation org.ringfence.policy:7:22:") {
		t.Fatalf("StartContainer with a bad policy: %v; want the shim's refusal with 7:22", err)
	}
	t.Logf("bad policy: %v", err)
}

// TestContainerdNRI: with "ringfence nri" connected to containerd's NRI
// socket, pods of containerd's default runtime (runc):
//   - without the annotation are left alone (io_uring blocked by
//     RuntimeDefault);
//   - annotated with the storage profile and Unconfined are fenced where
//     containerd passes NRI the container's seccomp profile type
//     (containerd 2.2, NRI 0.11): the plugin has no seccomp policy to
//     open and lets the launcher's filter fence the container;
//   - annotated and under RuntimeDefault are fenced where containerd also
//     passes the seccomp policy itself (containerd 2.3+, NRI 0.12), with
//     the rest of the profile kept in the container's bundle; 2.2
//     passes only the profile type, and the plugin refuses the creation,
//     which fails through CRI with its reason: closed, not open;
//   - under containerd 2.0 and 2.1 (Debian's 2.1.9 vendors NRI 0.8),
//     which pass neither, every annotated creation is refused so;
//   - with a bad policy fail their creation with its line and column.
//
// On a kernel that cannot fence, annotated creations fail with the
// plugin's reason. All of it under Debian's containerd 2.1 and under
// containerd 2.2 and 2.3 built from source.
func TestContainerdNRI(t *testing.T) { eachContainerd(t, builds(), nri) }

func nri(t *testing.T, c *ctrd) {
	rf, _ := exec.LookPath("ringfence")
	plog, err := os.Create(filepath.Join(c.dir, "nri.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rf, "nri", "--socket", c.nriSock, "--binary", rf, "--policy-dir", filepath.Join(c.dir, "nri-policies"), "--name", "ringfence", "--idx", "50")
	cmd.Stdout, cmd.Stderr = plog, plog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		data, _ := os.ReadFile(plog.Name())
		t.Logf("the plugin's log:\n%s", data)
	})
	// The plugin is connected once containerd logs its registration.
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		data, _ := os.ReadFile(c.log)
		if strings.Contains(string(data), "50-ringfence") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the plugin did not register with containerd in 60s")
		}
	}
	plain := c.runPod(t, "plain", "", nil)
	blocked(t, "unannotated pod with the NRI plugin", plain.probe(t, "probe"))
	c.checkShims(t)
	if !ocitest.KernelFences(t) {
		for _, name := range []string{"fenced", "unconfined"} {
			_, err := c.runPod(t, name, "", storage()).create(t, "probe", "probe")
			if err == nil || !strings.Contains(err.Error(), "this kernel cannot fence the container") {
				t.Fatalf("annotated container in pod %s on %s: %v; want its creation refused with the plugin's reason", name, vmtest.Release(), err)
			}
		}
		return
	}
	since := func(minor int) bool { return c.major > 2 || c.major == 2 && c.minor >= minor }
	// What containerd passes NRI: the profile type from 2.2 on, the
	// policy from 2.3 on.
	passes := map[string]bool{"unconfined": since(2), "fenced": since(3)}
	for _, name := range []string{"fenced", "unconfined"} {
		p := c.runPod(t, name, "", storage())
		if passes[name] {
			ocitest.CheckFenced(t, "container in pod "+name+" fenced by the NRI plugin", p.probe(t, "probe"))
			if name == "fenced" {
				p.checkProfileKept(t)
			}
			continue
		}
		// What the plugin says it got: nothing, or the profile type.
		want := "the runtime did not pass the container's seccomp policy to NRI, so ringfence cannot allow io_uring in it (nor its profile type"
		if since(2) {
			want = "the runtime did not pass the container's seccomp policy to NRI, so ringfence cannot allow io_uring in it (only its profile type, RUNTIME_DEFAULT"
		}
		_, err := p.create(t, "probe", "probe")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("annotated container in pod %s, containerd %d.%d: %v; want its creation refused with %q", name, c.major, c.minor, err, want)
		}
		t.Logf("pod %s, containerd %d.%d: %v", name, c.major, c.minor, err)
	}
	// A bad policy fails the creation (the plugin's answer to
	// CreateContainer), before anything looks at seccomp.
	_, err = c.runPod(t, "bad", "", map[string]string{ocifence.PolicyKey: badPolicy}).create(t, "probe", "probe")
	if err == nil || !strings.Contains(err.Error(), "annotation org.ringfence.policy:7:22:") {
		t.Fatalf("CreateContainer with a bad policy: %v; want the plugin's refusal with 7:22", err)
	}
	t.Logf("bad policy: %v", err)
}
