// Package nriplugin is "ringfence nri", an NRI plugin (containerd 2.3+,
// CRI-O 1.34+; under containerd 2.2, which passes NRI the seccomp profile
// type but not the policy, Unconfined containers only) that fences the
// containers whose pod names a ringfence policy, without changing the
// runtime: at container creation it adjusts
// the process arguments, the mounts and the seccomp policy exactly as the
// OCI runtime shim rewrites a bundle (see package ocifence).
//
// Annotations (pod annotations, since Kubernetes has no per-container
// ones):
//
//	org.ringfence.policy: profile:storage              # every container of the pod
//	org.ringfence.policy/container.db: profile:storage # the container named db; wins
//	org.ringfence.policy/container.sidecar: none       # no policy for this container
//	org.ringfence.if-supported: "true"                 # start unfenced where the kernel cannot fence
//
// Values are an inline policy (YAML or JSON), profile:NAME, or the name of
// a policy file in the trusted policy directory (Config.Policies): a pod's
// author is not trusted with the node's files, so no other file is read.
// The value "none" names no policy (ocifence.None): the container is
// treated as if it had no annotation, which here, since the plugin has no
// default policy, leaves it as it is.
//
// NRI offers no hook for processes started later in a container
// (kubectl exec): they are not fenced by the plugin. And NRI fails open:
// while the plugin is not running, the runtime creates annotated
// containers unfenced, unless the pod requires the plugin with NRI's
// required-plugins.noderesource.dev annotation (and the runtime's default
// validator is enabled). Use the runtime shim (RuntimeClass) where either
// matters.
package nriplugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
)

// Config configures the plugin.
type Config struct {
	// Binary is the ringfence binary to mount into fenced containers, as
	// a path on the node (the DaemonSet copies itself there).
	Binary string
	// PolicyDir is a directory on the node, at the same path in the
	// plugin's own container, where the plugin writes the policies it
	// mounts (one file per policy, named by its SHA-256).
	PolicyDir string
	// Policies is the trusted directory, in the plugin's container, of
	// the policy files annotations may name (and policies extend); ""
	// refuses every file. See ringfence.ResolvePolicyValue.
	Policies string
	// IfSupported lets every container start unfenced on a kernel that
	// cannot fence it (the pod annotation does so for one pod).
	IfSupported bool
	// Kernel is the node's kernel.
	Kernel ringfence.Kernel
	// SeccompCheck says what to do when the policy lets io_uring do what
	// the container's seccomp profile forbids (the zero value refuses).
	SeccompCheck ocifence.SeccompCheck
	// Log receives one line per decision; nil drops them.
	Log io.Writer
}

// Plugin is the NRI plugin; pass it to stub.New.
type Plugin struct {
	cfg Config
}

// New returns a plugin with cfg.
func New(cfg Config) (*Plugin, error) {
	if cfg.Binary == "" || cfg.PolicyDir == "" || cfg.Kernel == nil {
		return nil, errors.New("nriplugin: Binary, PolicyDir and Kernel must be set")
	}
	return &Plugin{cfg: cfg}, nil
}

func (p *Plugin) logf(format string, args ...any) {
	if p.cfg.Log != nil {
		fmt.Fprintf(p.cfg.Log, format+"\n", args...)
	}
}

// CreateContainer adjusts a container whose pod names a policy. Errors
// fail the container's creation, with the reason.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj, err := p.adjust(pod, ctr)
	if err != nil {
		err = fmt.Errorf("ringfence: pod %s/%s container %s: %w", pod.GetNamespace(), pod.GetName(), ctr.GetName(), err)
		p.logf("%v", err)
		return nil, nil, err
	}
	return adj, nil, nil
}

func (p *Plugin) adjust(pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, error) {
	choice, ok, err := ocifence.Choose(pod.GetAnnotations(), ctr.GetName())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	pol, source, err := ringfence.ResolvePolicyValue(choice.Value, "annotation "+choice.Key, p.cfg.Policies)
	if err != nil {
		return nil, err
	}
	if err := ocifence.Check(p.cfg.Kernel, pol); err != nil {
		if errors.Is(err, ocifence.ErrCannotFence) && (choice.IfSupported || p.cfg.IfSupported) {
			p.logf("ringfence: pod %s/%s container %s starts WITHOUT its io_uring policy and with its seccomp profile unchanged: %v", pod.GetNamespace(), pod.GetName(), ctr.GetName(), err)
			return nil, nil
		}
		return nil, fmt.Errorf("not starting the container: %w", err)
	}
	args := ctr.GetArgs()
	if len(args) == 0 {
		return nil, errors.New("the container has no process arguments to run under the policy")
	}
	for _, m := range ctr.GetMounts() {
		if d := filepath.Clean(m.Destination); d == ocifence.Dir || strings.HasPrefix(d, ocifence.Dir+"/") {
			return nil, fmt.Errorf("the container already mounts %s, where ringfence mounts the policy and its binary", m.Destination)
		}
	}
	policyFile, err := p.writePolicy(source)
	if err != nil {
		return nil, err
	}
	adj := &api.ContainerAdjustment{}
	adj.SetArgs(ocifence.Args(args, choice.IfSupported || p.cfg.IfSupported))
	for _, m := range ocifence.Mounts(p.cfg.Binary, policyFile) {
		adj.AddMount(&api.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
	}
	adj.AddAnnotation(ocifence.FencedKey, "true")
	if err := p.adjustSeccomp(adj, ctr, pol); err != nil {
		return nil, err
	}
	p.logf("ringfence: pod %s/%s container %s fenced by %s", pod.GetNamespace(), pod.GetName(), ctr.GetName(), choice.Key)
	return adj, nil
}

// adjustSeccomp opens the container's seccomp policy for the three
// io_uring system calls.
func (p *Plugin) adjustSeccomp(adj *api.ContainerAdjustment, ctr *api.Container, pol *policy.Policy) error {
	lc := ctr.GetLinux()
	sp := lc.GetSeccompPolicy()
	if sp == nil {
		const msg = "the runtime did not pass the container's seccomp policy to NRI, so ringfence cannot allow io_uring in it"
		prof := lc.GetSeccompProfile()
		switch {
		case prof == nil:
			return errors.New(msg + " (nor its profile type: containerd 2.0 and 2.1 pass neither)")
		case prof.GetProfileType() == api.SecurityProfile_UNCONFINED:
			return nil
		default:
			return fmt.Errorf("%s (only its profile type, %s: containerd 2.2 passes no policy, 2.3 does)", msg, prof.GetProfileType())
		}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:    specs.LinuxSeccompAction(sp.DefaultAction),
		ListenerPath:     sp.ListenerPath,
		ListenerMetadata: sp.ListenerMetadata,
		Syscalls:         api.ToOCILinuxSyscalls(sp.Syscalls),
	}
	if e := sp.GetDefaultErrno(); e != nil {
		n := uint(e.GetValue())
		s.DefaultErrnoRet = &n
	}
	for _, a := range sp.Architectures {
		s.Architectures = append(s.Architectures, specs.Arch(a))
	}
	for _, f := range sp.Flags {
		s.Flags = append(s.Flags, specs.LinuxSeccompFlag(f))
	}
	if p.cfg.SeccompCheck != ocifence.SeccompOff {
		v, err := p.cfg.Kernel.Version()
		if err != nil {
			return err
		}
		bs, err := ocifence.Bypasses(s, pol, v)
		if err != nil {
			return fmt.Errorf("seccomp check: %w", err)
		}
		if len(bs) > 0 {
			if p.cfg.SeccompCheck != ocifence.SeccompWarn {
				return fmt.Errorf("not starting the container: %w", ocifence.BypassError(bs))
			}
			p.logf("ringfence: warning: container %s: %v", ctr.GetName(), ocifence.BypassError(bs))
		}
	}
	opened, changes := ocifence.OpenSeccomp(s)
	if len(changes) == 0 {
		return nil
	}
	if e := opened.DefaultErrnoRet; e != nil && *e != 1 {
		// NRI v0.12's spec generator drops defaultErrnoRet when it
		// applies the adjustment; runc and crun then answer EPERM.
		p.logf("ringfence: warning: container %s: the seccomp profile's default errno %d becomes EPERM: NRI's spec generator drops defaultErrnoRet", ctr.GetName(), *e)
	}
	adj.SetLinuxSeccompPolicy(api.FromOCILinuxSeccomp(opened))
	return nil
}

// writePolicy writes source into the policy directory, named by its
// SHA-256, and returns its path.
func (p *Plugin) writePolicy(source []byte) (string, error) {
	sum := sha256.Sum256(source)
	path := filepath.Join(p.cfg.PolicyDir, hex.EncodeToString(sum[:])+".yaml")
	if data, err := readlimit.File(path); err == nil && string(data) == string(source) {
		return path, nil
	}
	if err := os.MkdirAll(p.cfg.PolicyDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(p.cfg.PolicyDir, ".policy-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(source); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}
