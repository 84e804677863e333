// Package ocifence is what fencing a container means for its OCI spec,
// shared by the OCI runtime shim (ringfence-runtime) and the NRI plugin
// (ringfence nri): which annotation chooses the policy, where the ringfence
// binary and the policy appear inside the container, how the process's
// arguments are wrapped in "ringfence run", and how the container's seccomp
// profile is opened for exactly the three io_uring system calls.
//
// A fenced container runs
//
//	/.ringfence/ringfence run --policy /.ringfence/policy.yaml -- ARGS...
//
// with both files bind-mounted read-only, so the container's program and
// everything it starts can use io_uring only as the policy says.
package ocifence

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/policy"
)

// Annotation keys. The same keys serve OCI bundles (config.json), CRI pod
// annotations that containerd or CRI-O pass to the runtime, and the NRI
// plugin, which sees pod annotations directly.
const (
	// PolicyKey names the policy of a container (in config.json) or of
	// every container of a pod (pod annotation): inline YAML or JSON,
	// "profile:NAME", or a path (see ringfence.PolicyFromOCIConfig), or
	// None.
	PolicyKey = ringfence.OCIAnnotation
	// ContainerPolicyPrefix + container name names the policy of one
	// container of a pod; it wins over PolicyKey. The value None sets
	// the pod's policy aside for that container.
	ContainerPolicyPrefix = PolicyKey + "/container."
	// IfSupportedKey, set to "true", lets a container start unfenced, with
	// its original seccomp profile (io_uring blocked as before), on a
	// kernel that cannot fence it. Anything but "true" or "false" is an
	// error.
	IfSupportedKey = "org.ringfence.if-supported"
	// FencedKey is set to "true" on specs that the shim or the plugin
	// rewrote; "runc exec" into such a container is fenced too.
	FencedKey = "org.ringfence.fenced"
	// None is the value, at either policy key, that names no policy: the
	// container is treated as if it had no policy annotation at all (at
	// the per-container key, the pod's policy is set aside too). So the
	// administrator's default policy, where one is set (runtime.yaml's
	// "policy", "ringfence nri --default-policy"), applies, and
	// otherwise the container runs unfenced: whoever writes annotations
	// can choose a policy but never remove the administrator's default.
	None = ringfence.OCINone
)

// Paths inside a fenced container.
const (
	// Dir holds the two bind mounts.
	Dir = "/.ringfence"
	// BinaryPath is where the ringfence binary is mounted.
	BinaryPath = Dir + "/ringfence"
	// PolicyPath is where the policy source is mounted.
	PolicyPath = Dir + "/policy.yaml"
	// FloorPath is where ringfence-runtime mounts the administrator's
	// floor policy, which holds the container whatever its own policy.
	FloorPath = Dir + "/floor.yaml"
)

// IOUringSyscalls returns the system calls a fenced container's seccomp
// profile must allow: io_uring_setup, io_uring_enter, io_uring_register.
func IOUringSyscalls() []string {
	return []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}
}

// Choice is the policy annotation that applies to a container.
type Choice struct {
	// Key is the annotation that chose the policy, for messages.
	Key string
	// Value is its value (inline policy, profile:NAME or a path).
	Value string
	// IfSupported is true when IfSupportedKey says "true".
	IfSupported bool
}

// Choose returns the policy annotation for the container name (may be
// empty) among annotations: ContainerPolicyPrefix+name first, then
// PolicyKey. ok is false when neither is set, when the container's own
// key says None, or when it is not set and PolicyKey says None: then the
// runtime's default policy, if any, applies (see None).
func Choose(annotations map[string]string, name string) (c Choice, ok bool, err error) {
	switch v := annotations[IfSupportedKey]; v {
	case "", "false":
	case "true":
		c.IfSupported = true
	default:
		return c, false, fmt.Errorf("annotation %s is %q: want true or false", IfSupportedKey, v)
	}
	if name != "" {
		key := ContainerPolicyPrefix + name
		if v, found := annotations[key]; found {
			if strings.TrimSpace(v) == None {
				return c, false, nil
			}
			c.Key, c.Value = key, v
			return c, true, nil
		}
	}
	if v, found := annotations[PolicyKey]; found {
		if strings.TrimSpace(v) == None {
			return c, false, nil
		}
		c.Key, c.Value = PolicyKey, v
		return c, true, nil
	}
	return c, false, nil
}

// Args returns the process arguments of a fenced container: args run by
// "ringfence run" under the mounted policy.
func Args(args []string, ifSupported bool) []string {
	return Wrap(args, ifSupported, PolicyPath)
}

// Wrap returns args run by one "ringfence run" per policy (paths inside
// the container), the first outermost. Each run's filters stack on those
// before it, which only deny more, so the program is held by every one of
// the policies.
func Wrap(args []string, ifSupported bool, policies ...string) []string {
	var out []string
	for _, p := range policies {
		out = append(out, BinaryPath, "run", "--policy", p)
		if ifSupported {
			out = append(out, "--if-supported")
		}
		out = append(out, "--")
	}
	return append(out, args...)
}

// Unwrap splits args that Wrap made into its wrappers (every
// "/.ringfence/ringfence run --policy P [--if-supported] --" in front,
// with P one of PolicyPath and FloorPath) and the program's own
// arguments; ok is false when args do not start with such a wrapper.
func Unwrap(args []string) (wrappers, program []string, ok bool) {
	i := 0
	for {
		rest := args[i:]
		if len(rest) < 5 || rest[0] != BinaryPath || rest[1] != "run" || rest[2] != "--policy" || (rest[3] != PolicyPath && rest[3] != FloorPath) {
			break
		}
		n := 4
		if rest[n] == "--if-supported" {
			n++
		}
		if n >= len(rest) || rest[n] != "--" {
			break
		}
		i += n + 1
	}
	return args[:i], args[i:], i > 0
}

// IsWrapped reports whether args are already the arguments Args makes.
func IsWrapped(args []string) bool {
	return len(args) >= 5 && args[0] == BinaryPath && args[1] == "run" && slices.Contains(args, "--")
}

// Mounts returns the two read-only bind mounts of a fenced container: the
// ringfence binary at binary and the policy source at policyFile (host
// paths) onto BinaryPath and PolicyPath.
func Mounts(binary, policyFile string) []specs.Mount {
	return []specs.Mount{Mount(binary, BinaryPath), Mount(policyFile, PolicyPath)}
}

// Mount returns the read-only bind mount of the host file source at dest.
func Mount(source, dest string) specs.Mount {
	return specs.Mount{Destination: dest, Type: "bind", Source: source, Options: []string{"bind", "ro", "nosuid", "nodev"}}
}

// ErrCannotFence wraps the reason a kernel cannot fence a container.
var ErrCannotFence = errors.New("this kernel cannot fence the container")

// Check reports whether k can run p as a container's policy: it must have
// io_uring task filters and p must compile for it. The error says why not;
// errors.Is(err, ErrCannotFence) tells a kernel that lacks what fencing
// needs (IfSupported may then start the container unfenced) from a policy
// that does not compile for it (always an error).
func Check(k ringfence.Kernel, p *policy.Policy) error {
	if err := k.Supported(); err != nil {
		return fmt.Errorf("%w: %v", ErrCannotFence, err)
	}
	v, err := k.Version()
	if err != nil {
		return fmt.Errorf("%w: cannot read its version: %v", ErrCannotFence, err)
	}
	if _, err := ringfence.Compile(p, v); err != nil {
		return fmt.Errorf("policy does not compile for Linux %s: %w", v, err)
	}
	// Does the kernel keep task filters across execve after a thread used
	// io_uring? Debian's 7.0.13 does not: the container's program could
	// shed its policy. Found by behaviour, in a throwaway child.
	if err := k.ExecKeepsFilters(); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotFence, err)
	}
	return nil
}
