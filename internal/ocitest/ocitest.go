// Package ocitest is for the in-VM tests of fenced containers (the OCI
// runtime shim, the NRI plugin): an OCI bundle whose program is the test
// binary itself, mounted at /probe, and that program, which submits
// io_uring requests and prints what the kernel answered.
//
// A test binary calls Dispatch first thing (from init or TestMain), so
// that inside a container it plays the probe instead of running tests.
package ocitest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/uringprobe"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/seccompprofile"
)

// RoleEnv makes the test binary the container's program: "probe" or
// "sleep".
const RoleEnv = "RINGFENCE_OCITEST_ROLE"

// Report is what the probe prints, one JSON line.
type Report struct {
	// Filtered: the task carries io_uring restrictions or filters. Not
	// meaningful when seccomp answers io_uring_register with EPERM.
	Filtered bool `json:"filtered"`
	// Setup is io_uring_setup's error, if it failed.
	Setup   string              `json:"setup,omitempty"`
	Results []uringprobe.Result `json:"results,omitempty"`
}

// ProbeNames are the requests the probe submits; under the storage
// profile the first three are allowed and AF_INET sockets denied.
func ProbeNames() []string {
	return []string{"NOP", "OPENAT /proc/self/status O_RDONLY", "SOCKET AF_UNIX SOCK_STREAM", "SOCKET AF_INET SOCK_STREAM"}
}

// Dispatch plays the role RoleEnv names, if any, and exits; otherwise it
// returns. A single argument RoleEnv=ROLE names the role too, for
// processes exec'd into a container, which inherit its environment (CRI's
// ExecSync sets none of its own).
func Dispatch() {
	role := os.Getenv(RoleEnv)
	if len(os.Args) == 2 && strings.HasPrefix(os.Args[1], RoleEnv+"=") {
		role = strings.TrimPrefix(os.Args[1], RoleEnv+"=")
	}
	switch role {
	case "probe":
		os.Exit(probe())
	case "sleep":
		time.Sleep(2 * time.Minute)
		os.Exit(0)
	}
}

func probe() int {
	var ps []uringprobe.Probe
	for _, p := range uringprobe.Probes() {
		for _, n := range ProbeNames() {
			if p.Name == n {
				ps = append(ps, p)
			}
		}
	}
	var r Report
	r.Filtered, _ = kernel.TaskRestricted()
	res, err := uringprobe.Run(ps, uringprobe.Plain)
	r.Results = res
	if err != nil {
		r.Setup = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Printf("%s\n", b)
	return 0
}

// Caps are Docker's default capabilities, the container's.
func Caps() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
}

// Spec returns the spec of a container that runs this test binary as
// /probe in role, with seccomp profile s and the annotations, on the
// root file system rootfs.
func Spec(t testing.TB, rootfs, role string, s *specs.LinuxSeccomp, ann map[string]string) *specs.Spec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args:         []string{"/probe"},
			Env:          []string{"PATH=/usr/bin:/bin", RoleEnv + "=" + role},
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: Caps(), Effective: Caps(), Permitted: Caps()},
		},
		Root:     &specs.Root{Path: rootfs},
		Hostname: "fenced",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}},
			{Destination: "/probe", Type: "bind", Source: self, Options: []string{"bind", "ro"}},
		},
		Annotations: ann,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
			Seccomp:    s,
		},
	}
}

// Rootfs makes an almost empty root file system in dir: the mount
// points of Spec.
func Rootfs(t testing.TB, dir string) string {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"proc", "dev", "tmp", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "probe"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// WriteBundle writes spec as dir/config.json.
func WriteBundle(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Bundle writes a bundle in a new directory whose container runs the
// probe in role with seccomp profile s and the annotations.
func Bundle(t testing.TB, role string, s *specs.LinuxSeccomp, ann map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	WriteBundle(t, dir, Spec(t, Rootfs(t, dir), role, s, ann))
	return dir
}

// ParseReport reads the probe's report, the last line of out.
func ParseReport(t testing.TB, out string) Report {
	t.Helper()
	var r Report
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("the probe printed %q: %v", out, err)
	}
	return r
}

// CheckFenced checks a report of the probe under the storage profile:
// a filtered task, the allowed requests succeeded, AF_INET sockets got
// -EACCES.
func CheckFenced(t testing.TB, what string, r Report) {
	t.Helper()
	if r.Setup != "" || !r.Filtered || len(r.Results) != len(ProbeNames()) {
		t.Fatalf("%s: %+v; want a filtered task whose requests all completed", what, r)
	}
	for _, res := range r.Results {
		denied := res.Op == abi.OpSocket && strings.Contains(res.Name, "AF_INET")
		switch {
		case denied && res.Res != -int32(syscall.EACCES):
			t.Errorf("%s: %s = %d, want -EACCES (the storage profile denies it)", what, res.Name, res.Res)
		case !denied && res.Res < 0:
			t.Errorf("%s: %s = %d, want success (the storage profile allows it)", what, res.Name, res.Res)
		}
	}
}

// KernelFences reports whether the running kernel can fence containers
// by its version: filters, kept across execve (7.1 and later; Debian's
// 7.0.13 drops them). Tests compare it with what ringfence decides.
func KernelFences(t testing.TB) bool {
	v, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	return kernel.Supported() == nil && !v.Less(abi.Version{Major: 7, Minor: 1})
}

// NoPivot reports whether runtimes must not pivot_root in the guest:
// 6.19 refuses to pivot out of its initramfs root (docs/kernel.md).
func NoPivot() bool {
	v, _ := kernel.Version()
	return v.Less(abi.Version{Major: 7})
}

// Kernel is a ringfence.Kernel whose answers to what fencing asks
// (support, version, whether filters survive execve) are fixed, for the
// host tests; the VM tests ask the real kernel.
type Kernel struct {
	ringfence.Kernel
	// Unsupported, if not nil, is Supported's answer.
	Unsupported error
	// Release is Version's answer.
	Release abi.Version
}

// Supported returns k.Unsupported.
func (k Kernel) Supported() error { return k.Unsupported }

// Version returns k.Release.
func (k Kernel) Version() (abi.Version, error) { return k.Release, nil }

// ExecKeepsFilters answers as Debian's kernels did: 7.0 drops task
// filters at execve once a thread used io_uring, 7.1 and later keep them.
func (k Kernel) ExecKeepsFilters() error {
	if k.Release.Less(abi.Version{Major: 7, Minor: 1}) {
		return fmt.Errorf("fake kernel %v: %w", k.Release, ringfence.ErrExecDropsFilters)
	}
	return nil
}

// Seccomp returns a real profile of testdata/seccomp (moby-default.json,
// podman-seccomp.json) as Docker or Podman (runtime) put it into a
// container's config.json on x86-64 with their default capabilities.
// The path is relative to a package two levels below the module root,
// as every user of this package is.
func Seccomp(t testing.TB, file, runtime string) *specs.LinuxSeccomp {
	t.Helper()
	prof, err := seccompprofile.Load(filepath.Join("..", "..", "testdata", "seccomp", file))
	if err != nil {
		t.Fatal(err)
	}
	s, err := seccompFromProfile(prof, seccompprofile.Options{Runtime: runtime, Arch: "amd64", Kernel: abi.Version{Major: 7, Minor: 3}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// DockerSeccomp is Docker's default profile in a container's config.json.
func DockerSeccomp(t testing.TB) *specs.LinuxSeccomp {
	return Seccomp(t, "moby-default.json", seccompprofile.Docker)
}

// PodmanSeccomp is Podman's default profile in a container's config.json.
func PodmanSeccomp(t testing.TB) *specs.LinuxSeccomp {
	return Seccomp(t, "podman-seccomp.json", seccompprofile.Podman)
}

// seccompFromProfile returns a seccomp profile file (Docker's or
// Podman's format, or the OCI form) as the linux.seccomp of a
// config.json for the container opts describes, choosing its entries by
// capabilities, architecture and kernel as Docker and Podman do.
func seccompFromProfile(prof *seccompprofile.Profile, opts seccompprofile.Options) (*specs.LinuxSeccomp, error) {
	entries, err := prof.Effective(opts)
	if err != nil {
		return nil, err
	}
	s := &specs.LinuxSeccomp{DefaultAction: specs.LinuxSeccompAction(prof.DefaultAction)}
	if prof.DefaultErrno != 0 {
		n := uint(prof.DefaultErrno)
		s.DefaultErrnoRet = &n
	}
	for _, a := range prof.Architectures {
		s.Architectures = append(s.Architectures, specs.Arch(a))
	}
	for _, e := range entries {
		r := specs.LinuxSyscall{Names: e.Names, Action: specs.LinuxSeccompAction(e.Action)}
		if e.Errno != 0 {
			n := uint(e.Errno)
			r.ErrnoRet = &n
		}
		for _, a := range e.Args {
			r.Args = append(r.Args, specs.LinuxSeccompArg{Index: uint(a.Index), Value: a.Value, ValueTwo: a.ValueTwo, Op: specs.LinuxSeccompOperator(a.Op)})
		}
		s.Syscalls = append(s.Syscalls, r)
	}
	return s, nil
}
