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
func verifyInVM(e *env, src, version string, all bool) int {
	data, _, err := loadPolicyOrProfile(src)
	if err != nil {
		fmt.Fprintf(e.stderr, "ringfence verify: %v\n", err)
		return exitUsage
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
	switch code := runInVM(e, "ringfence verify --vm "+version, version,
		[]vm.File{{Path: guestPolicy, Data: data, Mode: 0o644}}, args); code {
	case exitOK, exitDenied, exitUsage:
		return code
	default:
		fmt.Fprintf(e.stderr, "ringfence verify --vm %s: verify in the guest exited %d\n", version, code)
		return exitUsage
	}
}
