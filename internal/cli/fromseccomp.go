package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/seccompprofile"
)

// fromSeccompCommand is "ringfence from-seccomp".
func fromSeccompCommand() *command {
	return &command{
		name:    "from-seccomp",
		args:    "PROFILE.json",
		summary: "derive the io_uring policy that denies what a seccomp profile denies",
		help: `Reads a seccomp profile (OCI linux.seccomp, or a Docker or Podman profile
file) and prints the io_uring policy that denies through the ring what the
profile denies as system calls (docs/seccomp.md): an opcode is allowed
when the profile allows every system call it stands for; SOCKET and OPENAT
keep the profile's conditions on the arguments filters see; URING_CMD is
denied. The profile's denial of io_uring_setup, io_uring_enter and
io_uring_register plays no part. Entries that depend on capabilities,
architecture or kernel are decided for the container the flags describe
(by default the runtime's default capabilities and this machine's
architecture). What cannot be carried over exactly is handled safely and
reported on standard error, one note per line, at the profile's
file:line:col. PROFILE.json may be "-" for standard input.

Exit status: 0 derived, 1 the profile is invalid, 2 bad usage or an
unreadable file.`,
		setup: func(fs *flag.FlagSet) action {
			out := fs.String("o", "", "write the policy to `FILE` instead of standard output")
			asJSON := fs.Bool("json", false, "write JSON instead of YAML")
			quiet := fs.Bool("quiet", false, "do not print the notes")
			opts := seccompFlags(fs)
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one PROFILE.json")
				}
				o, err := opts()
				if err != nil {
					return usagef("%v", err)
				}
				prof, err := loadProfile(e, args[0])
				if err != nil {
					return err
				}
				d, err := prof.Derive(o)
				if err != nil {
					return fail(exitUsage, err)
				}
				text, err := d.Policy.YAML()
				if *asJSON {
					text, err = d.Policy.JSON()
				}
				if err != nil {
					return err
				}
				if !*quiet {
					for _, n := range d.Notes {
						fmt.Fprintln(e.stderr, "note:", n)
					}
				}
				return e.writeOutput(*out, text)
			}
		},
	}
}

// loadProfile reads and parses a seccomp profile argument ("-" for
// standard input); an invalid profile fails with exit status 1.
func loadProfile(e *env, arg string) (*seccompprofile.Profile, error) {
	data, name, err := e.readInput(arg)
	if err != nil {
		return nil, err
	}
	prof, err := seccompprofile.Parse(data, name)
	if err != nil {
		return nil, fail(exitDenied, err)
	}
	return prof, nil
}

// seccompFlags declares the flags that describe the container a seccomp
// profile is evaluated for, and returns a function that reads them.
func seccompFlags(fs *flag.FlagSet) func() (seccompprofile.Options, error) {
	runtime := fs.String("runtime", "", "the `RUNTIME` whose default capabilities apply when --caps is not given: docker (the default) or podman")
	caps := fs.String("caps", "", "the container's capabilities `CAPS`, comma-separated (CAP_NET_RAW,CAP_AUDIT_WRITE); \"none\" for none")
	arch := fs.String("arch", "", "the container's architecture `ARCH` as profiles name it: amd64, arm64, ... (default: this machine's)")
	kern := fs.String("kernel", "", "the kernel `VERSION` for minKernel (default 7.0, the oldest with io_uring filters)")
	return func() (seccompprofile.Options, error) {
		o := seccompprofile.Options{Runtime: *runtime, Arch: *arch}
		switch *caps {
		case "":
		case "none":
			o.Caps = []string{}
		default:
			o.Caps = strings.Split(*caps, ",")
		}
		if *kern != "" {
			v, err := abi.ParseVersion(*kern)
			if err != nil {
				return o, fmt.Errorf("--kernel: %v", err)
			}
			o.Kernel = v
		}
		if o.Runtime != "" && o.Runtime != seccompprofile.Docker && o.Runtime != seccompprofile.Podman {
			return o, fmt.Errorf("--runtime %q: want docker or podman", o.Runtime)
		}
		return o, nil
	}
}
