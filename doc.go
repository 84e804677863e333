// Package ringfence is the library container runtimes, sandboxes and
// services embed to put io_uring under a policy: load or build a policy,
// compile it for a kernel, apply it to the calling task or to one ring, and
// explain its decisions.
//
// A runtime calls it in its init process, after setting up the container and
// before exec:
//
//	p, found, err := ringfence.PolicyFromOCI(bundleDir, ringfence.DefaultPolicyDir) // or LoadPolicy, Profile
//	...
//	v, err := ringfence.RunningKernel()
//	plan, err := ringfence.Compile(p, v)
//	err = ringfence.ApplyToTask(plan, ringfence.ApplyOptions{})
//	// exec the container's process from this goroutine
//
// Task filters and no_new_privs belong to one OS thread. ApplyToTask locks
// the calling goroutine to its thread (runtime.LockOSThread) and leaves it
// locked, so that the exec or fork that follows from the same goroutine
// carries the policy. Rings created before ApplyToTask are not filtered:
// close them (RingFDs lists them) or refuse to continue.
//
// ApplyToTask also registers the policy's io_uring task restrictions (its
// register section) before the filters and installs a small companion
// seccomp filter after them (CompanionSeccomp), and it refuses a kernel
// that drops task filters at execve once a thread used io_uring: it checks
// by behaviour (ExecKeepsFilters) and fails with an error wrapping
// ErrExecDropsFilters, which names the kernel fix.
//
// Everything fails closed: any error means the policy is not (fully) in
// place, and the caller must not run the workload. See docs/runtime-guide.md
// for the threat model: what this guarantees, against whom, and what it
// cannot (a workload that may ptrace other processes).
package ringfence
