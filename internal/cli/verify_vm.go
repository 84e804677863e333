package cli

import (
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/internal/vm"
)

// verifyInVM runs "ringfence verify" inside Debian kernel version, booted
// under QEMU by the harness of "ringfence vm": a static ringfence built from
// the source tree and the policy go into the initramfs, and the guest's
// output and exit status become this command's.
func verifyInVM(e *env, src, version string, all bool) error {
	p, data, _, err := e.loadPolicy(src)
	if err != nil {
		return err
	}
	if len(p.Extends) > 0 {
		// The files it extends are not in the guest: send it flattened.
		if data, err = p.YAML(); err != nil {
			return err
		}
	}
	const guestPolicy = "/ringfence/policy.yaml"
	args := []string{"verify"}
	if all {
		args = append(args, "--all")
	}
	arg := guestPolicy
	if strings.HasPrefix(src, "profile:") {
		arg = src
	}
	args = append(args, arg)
	code, err := runInVM(e, version, []vm.File{{Path: guestPolicy, Data: data, Mode: 0o644}}, args)
	switch {
	case err != nil:
		return fmt.Errorf("--vm %s: %w", version, err)
	case code == exitOK:
		return nil
	case code == exitDenied, code == exitUsage:
		return exitStatus(code)
	}
	return fmt.Errorf("--vm %s: verify in the guest exited %d", version, code)
}
