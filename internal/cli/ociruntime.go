package cli

import (
	"flag"

	"github.com/ringfence/ringfence/internal/ocishim"
)

// ociRuntimeHelp is the help of "ringfence oci-runtime".
const ociRuntimeHelp = `An OCI runtime with runc's command line that fences containers: the same
binary answers to the name ringfence-runtime (a link to ringfence), which is
how Docker, Podman and containerd call it. Every command goes to the real
runtime (runc; or crun or another, set by RINGFENCE_RUNTIME or by "runtime:" in
/etc/ringfence/runtime.yaml) with the same arguments, global flags included.

For "create" and "run", a container whose config.json annotation
org.ringfence.policy names a policy (inline, profile:NAME or a file in the
trusted directory "policyDir:" of runtime.yaml, default
/etc/ringfence/policies; no other file is read), or any other container when
runtime.yaml sets a default "policy:" or a "floor:", is fenced first: the
ringfence binary and the policy are bind-mounted read-only at /.ringfence,
the process runs under "ringfence run", and the seccomp profile allows
io_uring_setup, io_uring_enter and io_uring_register (nothing else changes).
The original is kept as config.json.ringfence-orig. "exec" into a fenced
container runs the new process under the policy too. The annotation value
"none" names no policy: the container is treated as if it had no annotation,
so runtime.yaml's default policy, if set, applies (a per-container key,
org.ringfence.policy/container.NAME, set to "none" sets the pod's policy
aside the same way). A policy may replace the default, but "floor:" in
runtime.yaml holds every container whatever its annotations: the container's
own policy runs inside it (one "ringfence run" in another), so annotations
can only deny more. Pod sandbox (pause) containers are left alone, but only
when their runtime's sandbox ID annotation is their own container ID.

Fails closed: a bad policy, a kernel without io_uring filters, or one on
which a program could shed its filters makes "create" fail with the reason
(on standard error and in the --log file); the annotation
org.ringfence.if-supported: "true" or "ifSupported: true" in runtime.yaml lets
such a container start unchanged instead (under runtime.yaml's default
policy or floor only "ifSupported: true" does). See docs/kubernetes.md.

Exit status: the real runtime's; 1 when ringfence-runtime refused.`

// ociRuntimeCommand is "ringfence oci-runtime": its arguments are runc's,
// so run hands them over before any flag parsing; this entry gives it
// its place in the list of commands and its help.
func ociRuntimeCommand() *command {
	return &command{
		name:    "oci-runtime",
		args:    "[RUNTIME-FLAGS] COMMAND [ARGS...]",
		summary: "an OCI runtime (runc's command line) that fences containers; also run as ringfence-runtime",
		help:    ociRuntimeHelp,
		argsEnd: true,
		setup: func(fs *flag.FlagSet) action {
			return func(e *env, args []string) error {
				return exitStatus(ocishim.Main(args, e.stderr))
			}
		},
	}
}
