package ocifence

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// OpenSeccomp returns a copy of the seccomp profile s in which
// io_uring_setup, io_uring_enter and io_uring_register are allowed, and
// everything else is as in s. It removes the three names from every rule
// (whatever its action or errno: EPERM in Docker's profile, ENOSYS in
// Podman's) and, unless the default action already allows them, adds one
// unconditional SCMP_ACT_ALLOW rule for them. changes says what was done,
// one line per change; it is empty when s already allowed all three
// unconditionally. A nil s (no seccomp: unconfined) is returned as nil.
func OpenSeccomp(s *specs.LinuxSeccomp) (out *specs.LinuxSeccomp, changes []string) {
	if s == nil {
		return nil, nil
	}
	names := IOUringSyscalls()
	c := *s
	c.Syscalls = nil
	allowed := map[string]bool{}
	for _, r := range s.Syscalls {
		var keep []string
		for _, n := range r.Names {
			if !slices.Contains(names, n) {
				keep = append(keep, n)
				continue
			}
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				allowed[n] = true
				keep = append(keep, n)
				continue
			}
			changes = append(changes, fmt.Sprintf("%s: removed from a rule with action %s", n, action(r.Action, r.ErrnoRet)))
		}
		if len(keep) == 0 {
			continue
		}
		r.Names = keep
		c.Syscalls = append(c.Syscalls, r)
	}
	if c.DefaultAction == specs.ActAllow {
		return &c, changes
	}
	var add []string
	for _, n := range names {
		if !allowed[n] {
			add = append(add, n)
			changes = append(changes, fmt.Sprintf("%s: allowed (the default action is %s)", n, action(c.DefaultAction, c.DefaultErrnoRet)))
		}
	}
	if len(changes) == 0 {
		return s, nil
	}
	if len(add) > 0 {
		c.Syscalls = append(c.Syscalls, specs.LinuxSyscall{Names: add, Action: specs.ActAllow})
	}
	return &c, changes
}

// action formats a seccomp action with its errno, if any.
func action(a specs.LinuxSeccompAction, errno *uint) string {
	if errno != nil && (a == specs.ActErrno || a == specs.ActTrace) {
		return fmt.Sprintf("%s(%d)", a, *errno)
	}
	return string(a)
}
