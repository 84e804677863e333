// Package mobyseccomp reads seccomp profiles in moby's (Docker's) file
// format, the format of Docker's default profile and of
// "docker run --security-opt seccomp=FILE", and turns one into the OCI
// runtime-spec form a container's config.json carries, choosing entries by
// architecture, capabilities and kernel version as Docker does when it
// creates a container. Tests use it to put Docker's real default profile
// into OCI bundles.
package mobyseccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Profile is a seccomp profile in moby's format.
type Profile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	ArchMap         []ArchMap                `json:"archMap,omitempty"`
	Syscalls        []Syscall                `json:"syscalls"`
}

// ArchMap lists an architecture and the sub-architectures a filter for it
// also covers.
type ArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Syscall is one rule: names, action, argument conditions, and when the
// rule applies.
type Syscall struct {
	Names    []string                 `json:"names"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []*specs.LinuxSeccompArg `json:"args"`
	Comment  string                   `json:"comment"`
	Includes *Filter                  `json:"includes,omitempty"`
	Excludes *Filter                  `json:"excludes,omitempty"`
}

// Filter says for which architectures, capabilities and kernels a rule
// applies (Includes) or does not (Excludes).
type Filter struct {
	Arches    []string `json:"arches,omitempty"`
	Caps      []string `json:"caps,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// Parse reads a profile in moby's format; unknown fields are an error.
func Parse(data []byte) (*Profile, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var p Profile
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("moby seccomp profile: %w", err)
	}
	return &p, nil
}

// Target is the container a profile is turned into OCI form for.
type Target struct {
	// Arch is the native architecture in libseccomp's naming
	// (SCMP_ARCH_X86_64); the OCI profile lists it and its
	// sub-architectures from the archMap.
	Arch specs.Arch
	// Caps are the container's capabilities (CAP_CHOWN, ...).
	Caps []string
	// Kernel is the host kernel as major, minor; rules with a higher
	// minKernel are left out.
	Kernel [2]int
}

// DockerDefaultCaps returns the capabilities Docker gives a container by
// default.
func DockerDefaultCaps() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
}

// OCI returns the profile as the linux.seccomp of an OCI config.json for t.
func (p *Profile) OCI(t Target) (*specs.LinuxSeccomp, error) {
	s := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet}
	for _, a := range p.ArchMap {
		if a.Arch == t.Arch {
			s.Architectures = append([]specs.Arch{a.Arch}, a.SubArches...)
		}
	}
	// libseccomp's names lack the prefix in moby's arches lists
	// ("x86_64", "amd64"); compare on Go's and the kernel's names both.
	arch := map[specs.Arch][]string{
		specs.ArchX86_64:  {"amd64", "x86_64"},
		specs.ArchAARCH64: {"arm64", "aarch64"},
	}[t.Arch]
	for i, r := range p.Syscalls {
		ok, err := r.applies(t, arch)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d] (%s): %w", i, strings.Join(r.Names, ", "), err)
		}
		if !ok {
			continue
		}
		rule := specs.LinuxSyscall{Names: r.Names, Action: r.Action, ErrnoRet: r.ErrnoRet}
		for _, a := range r.Args {
			rule.Args = append(rule.Args, *a)
		}
		s.Syscalls = append(s.Syscalls, rule)
	}
	return s, nil
}

func (r Syscall) applies(t Target, arch []string) (bool, error) {
	anyArch := func(list []string) bool {
		for _, a := range list {
			if slices.Contains(arch, a) {
				return true
			}
		}
		return false
	}
	if in := r.Includes; in != nil {
		if len(in.Arches) > 0 && !anyArch(in.Arches) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(t.Caps, c) {
				return false, nil
			}
		}
		if in.MinKernel != "" {
			maj, min, err := parseKernel(in.MinKernel)
			if err != nil {
				return false, err
			}
			if t.Kernel[0] < maj || t.Kernel[0] == maj && t.Kernel[1] < min {
				return false, nil
			}
		}
	}
	if ex := r.Excludes; ex != nil {
		if anyArch(ex.Arches) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(t.Caps, c) {
				return false, nil
			}
		}
	}
	return true, nil
}

func parseKernel(s string) (int, int, error) {
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad minKernel %q: want MAJOR.MINOR", s)
	}
	return a, b, nil
}
