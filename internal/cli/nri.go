package cli

import (
	"context"
	"flag"
	"os/signal"
	"syscall"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/nriplugin"
)

// nriCommand is "ringfence nri": the NRI plugin.
func nriCommand() *command {
	return &command{
		name:       "nri",
		summary:    "run the NRI plugin that fences annotated Kubernetes containers",
		help:       nriplugin.Help,
		failStatus: 1,
		setup: func(fs *flag.FlagSet) action {
			var o nriplugin.Options
			fs.StringVar(&o.Binary, "binary", "/opt/ringfence/bin/ringfence", "the ringfence binary on the node, mounted into fenced containers (`PATH`)")
			fs.BoolVar(&o.Install, "install", false, "copy this executable to --binary first (the DaemonSet does)")
			fs.StringVar(&o.PolicyDir, "policy-dir", "/var/lib/ringfence/nri", "`DIR` on the node, at the same path in the plugin's container, for the policies it mounts")
			fs.StringVar(&o.Policies, "policies", ringfence.DefaultPolicyDir, "trusted `DIR`, in the plugin's container, of the policy files annotations may name; no other file is read")
			fs.StringVar(&o.Socket, "socket", "/var/run/nri/nri.sock", "the runtime's NRI socket (`PATH`)")
			fs.StringVar(&o.Name, "name", "ringfence", "plugin `NAME`")
			fs.StringVar(&o.Idx, "idx", "50", "plugin index: the order among NRI plugins (`NN`)")
			fs.StringVar(&o.SeccompCheck, "seccomp-check", "refuse", "`MODE` when a policy lets io_uring do what the container's seccomp profile forbids: refuse, warn or off")
			fs.BoolVar(&o.IfSupported, "if-supported", false, "start containers unfenced on kernels that cannot fence them (with a log line)")
			return func(e *env, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return nriplugin.Serve(ctx, o, e.stderr)
			}
		},
	}
}
