package seccompprofile

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// Runtime names whose default capability set applies when Options.Caps is
// nil.
const (
	Docker = "docker"
	Podman = "podman"
)

// DockerCaps is Docker's (moby's) default capability set for containers
// (moby daemon/pkg/oci/caps/defaults.go, DefaultCapabilities).
func DockerCaps() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
}

// PodmanCaps is Podman's default capability set (containers-common
// pkg/config/default.go, DefaultCapabilities; containers.conf
// default_capabilities). It has no CAP_AUDIT_WRITE, CAP_MKNOD or
// CAP_NET_RAW.
func PodmanCaps() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
}

// Options are the container facts a profile's includes and excludes
// depend on.
type Options struct {
	// Caps is the container's capability set (bounding set), names with
	// or without "CAP_". Nil means the default set of Runtime.
	Caps []string
	// Runtime picks the default capability set when Caps is nil: Docker
	// (the default when empty) or Podman.
	Runtime string
	// Arch is the container's architecture as profiles name it (Go's
	// names: amd64, arm64, ...); "" means the machine's (runtime.GOARCH).
	Arch string
	// Kernel is the kernel the container runs on, for minKernel; zero
	// means 7.0, the oldest kernel with io_uring filters, so a profile's
	// entries for kernels up to 7.0 apply.
	Kernel abi.Version
}

// resolved returns o with its defaults filled in, or an error for an
// unknown runtime.
func (o Options) resolved() (Options, error) {
	if o.Caps == nil {
		switch o.Runtime {
		case "", Docker:
			o.Caps, o.Runtime = DockerCaps(), Docker
		case Podman:
			o.Caps = PodmanCaps()
		default:
			return o, fmt.Errorf("unknown runtime %q: the default capability sets known are docker and podman", o.Runtime)
		}
	} else {
		caps := make([]string, len(o.Caps))
		for i, c := range o.Caps {
			c = strings.ToUpper(strings.TrimSpace(c))
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			caps[i] = c
		}
		o.Caps = caps
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Kernel == (abi.Version{}) {
		o.Kernel = abi.Version{Major: 7, Minor: 0}
	}
	return o, nil
}

// applies reports whether entry e is in effect for the container o
// describes (o resolved): every includes capability present, no excludes
// capability present, the architecture in includes.arches and not in
// excludes.arches, the kernel at least includes.minKernel and below
// excludes.minKernel. These are the rules Docker and Podman apply when they
// turn their profile files into the OCI configuration.
func (e Entry) applies(o Options) bool {
	in, ex := e.Includes, e.Excludes
	if len(in.Arches) > 0 && !slices.Contains(in.Arches, o.Arch) {
		return false
	}
	if slices.Contains(ex.Arches, o.Arch) {
		return false
	}
	for _, c := range in.Caps {
		if !slices.Contains(o.Caps, c) {
			return false
		}
	}
	for _, c := range ex.Caps {
		if slices.Contains(o.Caps, c) {
			return false
		}
	}
	if in.MinKernel != "" {
		if v, err := parseKernel(in.MinKernel); err == nil && o.Kernel.Less(v) {
			return false
		}
	}
	if ex.MinKernel != "" {
		if v, err := parseKernel(ex.MinKernel); err == nil && !o.Kernel.Less(v) {
			return false
		}
	}
	return true
}

// Effective returns the entries in effect for the container opts
// describes, in file order (Options' defaults filled in).
func (p *Profile) Effective(opts Options) ([]Entry, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range p.Syscalls {
		if e.applies(o) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Verdict is the profile's answer for one system call.
type Verdict uint8

// The verdicts. Unknown means the answer depends on arguments an io_uring
// request does not show (a path or a socket address in memory, a file
// descriptor).
const (
	Denied Verdict = iota
	Allowed
	Unknown
)

// String returns "denied", "allowed" or "unknown".
func (v Verdict) String() string {
	switch v {
	case Denied:
		return "denied"
	case Allowed:
		return "allowed"
	}
	return "unknown"
}

// Call is a system call with the arguments known of it: Args[i] is valid
// when Known[i].
type Call struct {
	Name  string
	Args  [6]uint64
	Known [6]bool
}

// Answer is a verdict with the entry that gave it (nil for the default
// action).
type Answer struct {
	Verdict Verdict
	Entry   *Entry
	// Unseen is set for Unknown: the argument the answer depends on.
	Unseen int
}

// decide answers call c with the entries in effect. Where several entries
// match one call, the most restrictive decides: a matching entry that
// denies wins over one that allows, whatever their order (so Podman's
// "socket(AF_VSOCK): EPERM" entry is not undone by its "socket(family !=
// AF_NETLINK): allow"). An entry with a condition on an argument that is
// not known may or may not match: a deny that may match, or only an allow
// that may match, gives Unknown.
func decide(entries []Entry, def Action, c Call) Answer {
	var maybeDeny, allow, maybeAllow *Entry
	unseenDeny, unseenAllow := -1, -1
	for i := range entries {
		e := &entries[i]
		if !e.names(c.Name) {
			continue
		}
		match, unseen := true, -1
		for _, a := range e.Args {
			if a.Index < 0 || a.Index > 5 {
				match = false
				break
			}
			if !c.Known[a.Index] {
				if unseen < 0 {
					unseen = a.Index
				}
				continue
			}
			if !a.Holds(c.Args[a.Index]) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		switch {
		case !e.Action.Allows() && unseen < 0:
			return Answer{Verdict: Denied, Entry: e}
		case !e.Action.Allows():
			if maybeDeny == nil {
				maybeDeny, unseenDeny = e, unseen
			}
		case unseen < 0:
			if allow == nil {
				allow = e
			}
		default:
			if maybeAllow == nil {
				maybeAllow, unseenAllow = e, unseen
			}
		}
	}
	switch {
	case maybeDeny != nil:
		return Answer{Verdict: Unknown, Entry: maybeDeny, Unseen: unseenDeny}
	case allow != nil:
		return Answer{Verdict: Allowed, Entry: allow}
	case maybeAllow != nil && !def.Allows():
		return Answer{Verdict: Unknown, Entry: maybeAllow, Unseen: unseenAllow}
	case def.Allows():
		return Answer{Verdict: Allowed}
	}
	return Answer{Verdict: Denied}
}

// Decide answers whether the profile lets the container opts describes
// make system call c, and by which entry (nil: the default action).
func (p *Profile) Decide(c Call, opts Options) (Answer, error) {
	entries, err := p.Effective(opts)
	if err != nil {
		return Answer{}, err
	}
	return decide(entries, p.DefaultAction, c), nil
}
