// Command ringfence restricts what io_uring may do: it compiles io_uring
// policies to the kernel's classic-BPF filters, assembles, disassembles,
// checks and emulates those filters, and runs programs under a policy.
//
// Run "ringfence help" for the list of commands. Called as
// ringfence-runtime (a link), it is the OCI runtime shim.
package main

import (
	"os"

	"github.com/ringfence/ringfence/internal/cli"
)

func main() {
	os.Exit(cli.MainArgv0(os.Args[0], os.Stdin, os.Stdout, os.Stderr, os.Args[1:]))
}
