package nriplugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/nri/pkg/stub"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/ocifence"
)

// Help is the help text of "ringfence nri", after its usage line.
const Help = `Runs the ringfence NRI plugin: it connects to the container runtime's NRI
socket (containerd 2.3+, CRI-O 1.34+; containerd 2.2 passes no seccomp
policy, so there only Unconfined containers) and fences every container
whose pod annotation names a policy:

  org.ringfence.policy: profile:storage
      every container of the pod
  org.ringfence.policy/container.NAME: profile:storage
      the container NAME; wins over the pod's
  org.ringfence.if-supported: "true"
      start unfenced (seccomp unchanged) where the kernel cannot fence

Values are an inline policy (YAML or JSON), profile:NAME, the name of a
policy file in the --policies directory (relative to it, or an absolute
path inside it), or "none". No other file is read, since pod authors are
not trusted with the node's files: "..", symbolic links out of the
directory and anything but regular files are refused, for the files
policies extend too. "none" names no policy: the container is treated as
if the annotation were not there (at the container's key, the pod's
policy is set aside too); the plugin has no default policy, so the
container is left as it is. (ringfence-runtime gives such a container
runtime.yaml's default policy: "none" never removes an administrator's
default.)

The container's process then runs under "ringfence run", with the binary
and the policy bind-mounted read-only at /.ringfence, and its seccomp
profile allows io_uring_setup, io_uring_enter and io_uring_register. A bad
policy or a kernel that cannot fence fails the container's creation, with
the reason. Processes started later by "kubectl exec" are not fenced: NRI
has no hook for them (use the ringfence-runtime RuntimeClass where that
matters).

NRI fails open: while this plugin is not running (not yet started on a
new node, restarting, crashed, evicted), the runtime creates containers
without asking it, so annotated pods start unfenced, with their seccomp
profile unchanged (io_uring blocked by the default profiles, allowed
under Unconfined). See docs/kubernetes.md for what to do about it.

Exit status: 0 when stopped by SIGINT or SIGTERM, 1 on errors, 2 for bad usage.`

// Options are the settings of "ringfence nri".
type Options struct {
	Binary      string // the ringfence binary on the node
	Install     bool   // copy this executable to Binary first
	PolicyDir   string // where policies are written, on the node
	Policies    string // the trusted directory of policy files annotations may name
	Socket      string // the runtime's NRI socket
	Name, Idx   string // plugin name and index
	IfSupported bool   // start containers unfenced where the kernel cannot fence
	// SeccompCheck is refuse, warn or off (see Config).
	SeccompCheck string
}

// Serve runs the plugin until ctx is done or the runtime closes the
// connection; log receives its decisions.
func Serve(ctx context.Context, o Options, log io.Writer) error {
	if o.Install {
		if err := installSelf(o.Binary); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	mode, err := ocifence.ParseSeccompCheck(o.SeccompCheck)
	if err != nil {
		return err
	}
	p, err := New(Config{Binary: o.Binary, PolicyDir: o.PolicyDir, Policies: o.Policies, IfSupported: o.IfSupported, SeccompCheck: mode, Kernel: ringfence.Host(), Log: log})
	if err != nil {
		return err
	}
	s, err := stub.New(p, stub.WithSocketPath(o.Socket), stub.WithPluginName(o.Name), stub.WithPluginIdx(o.Idx))
	if err != nil {
		return err
	}
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// installSelf copies this executable to path (through a temporary file and
// a rename, so running containers keep the old one).
func installSelf(path string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
