package ocifence

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccompprofile"
)

// SeccompCheck says what a fenced container's policy may do that its
// seccomp profile forbids: requests that would let io_uring do what the
// system call is denied (seccompprofile.Check).
type SeccompCheck string

// The modes of the check. The zero value refuses.
const (
	SeccompRefuse SeccompCheck = "refuse" // fail the container, saying which requests
	SeccompWarn   SeccompCheck = "warn"   // start it, with a warning
	SeccompOff    SeccompCheck = "off"    // do not check
)

// ParseSeccompCheck parses a mode; "" is SeccompRefuse.
func ParseSeccompCheck(s string) (SeccompCheck, error) {
	switch m := SeccompCheck(s); m {
	case "":
		return SeccompRefuse, nil
	case SeccompRefuse, SeccompWarn, SeccompOff:
		return m, nil
	}
	return "", fmt.Errorf("seccomp check %q: want refuse, warn or off", s)
}

// Bypasses reports the requests p allows that the container's seccomp
// profile s (as in its config.json, before OpenSeccomp) denies as system
// calls, on kernel k. A nil s (unconfined) has none. (The OCI form has
// no entries that depend on capabilities: the runtime that wrote it chose
// them already.)
func Bypasses(s *specs.LinuxSeccomp, p *policy.Policy, k abi.Version) ([]seccompprofile.Bypass, error) {
	if s == nil {
		return nil, nil
	}
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	prof, err := seccompprofile.Parse(data, "the container's seccomp profile")
	if err != nil {
		return nil, err
	}
	return seccompprofile.Check(prof, p, seccompprofile.Options{Caps: []string{}, Arch: runtime.GOARCH, Kernel: k})
}

// BypassError says, in one message, which requests bypass the profile.
func BypassError(bs []seccompprofile.Bypass) error {
	lines := make([]string, 0, 3)
	for i, b := range bs {
		if i == 3 {
			lines = append(lines, fmt.Sprintf("and %d more", len(bs)-3))
			break
		}
		lines = append(lines, b.String())
	}
	return fmt.Errorf("the policy lets io_uring do what the container's seccomp profile forbids (%d requests; fix the policy, or set the seccomp check to warn): %s", len(bs), strings.Join(lines, "; "))
}
