package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/vm/debian"
	"github.com/ringfence/ringfence/internal/vm/userland"
	"github.com/ringfence/ringfence/internal/vminit"
)

// GuestBinDir is where a Guest puts the static ringfence binary; it is
// on every step's PATH, so a command can name "ringfence".
const GuestBinDir = "/ringfence/bin"

// guestPath is the PATH of guest steps that have ringfence.
const guestPath = "PATH=" + GuestBinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Guest is one boot of a Debian kernel with the Debian userland of
// package vm/userland (PostgreSQL, Node.js, fio, qemu-img, runc, crun,
// Podman) and a static ringfence built from the source tree, for running
// commands in. The zero value plus Kernel is ready to use:
//
//	g := &vm.Guest{Kernel: "7.3"}
//	r, err := g.Run(ctx, vm.Shell("check", "ringfence run --profile default -- fio --version"))
//
// Run resolves and fetches the kernel, builds the image once (cached),
// builds the init and ringfence, boots, and returns the steps' results.
type Guest struct {
	// Kernel is the kernel to boot: "7.3" (the newest 7.3.x) or "7.3.4".
	Kernel string
	// CacheDir holds kernels and images; "" means
	// debian.DefaultCacheDir.
	CacheDir string
	// NoUserland boots with the init and ringfence alone (no Debian
	// userland): faster, for commands that need only ringfence.
	NoUserland bool
	// Userland is the image recipe; a zero Spec means userland.Default.
	Userland userland.Spec
	// Files are added on top of the userland.
	Files []File
	// Env is added to every step's environment ("KEY=VALUE").
	Env []string
	// MemoryMB is the guest's memory; 0 means Machine's default.
	MemoryMB int
	// InstructionClock: see Machine.InstructionClock.
	InstructionClock bool
	// Timeout bounds the boot; 0 means the steps' deadlines plus a
	// minute. A step with TimeoutSec 0 gets 5 minutes.
	Timeout time.Duration
	// Log receives progress lines (fetch, build, boot); nil discards.
	Log io.Writer
	// Console, if not nil, receives the console output as it arrives.
	Console io.Writer
}

// Shell returns a step that runs script with /bin/sh -ec in the userland,
// in /tmp, with a deadline of 5 minutes. name names the step in the
// result.
func Shell(name, script string) vminit.Step {
	return vminit.Step{Name: name, Path: "/bin/sh", Args: []string{"-ec", script}, Dir: "/tmp", TimeoutSec: 300}
}

// Run boots the guest and runs steps in order. The error is for failures
// to prepare or start the boot; what happened inside is in the Result
// (Steps, Problems). Each step's exit status is in its StepResult.
func (g *Guest) Run(ctx context.Context, steps ...vminit.Step) (*Result, error) {
	if len(steps) == 0 {
		return nil, fmt.Errorf("vm.Guest.Run: no steps")
	}
	log := g.Log
	if log == nil {
		log = io.Discard
	}
	cache := g.CacheDir
	if cache == "" {
		var err error
		if cache, err = debian.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	src, err := ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	kernel := g.Kernel
	if kernel == "" {
		return nil, fmt.Errorf("vm.Guest.Run: no kernel given (e.g. \"7.3\")")
	}
	ks, err := ResolveKernels(ctx, &debian.Fetcher{CacheDir: cache, Log: log}, []string{kernel}, log)
	if err != nil {
		return nil, err
	}
	var rootfs string
	if !g.NoUserland {
		spec := g.Userland
		if spec.Suite == "" {
			spec = userland.Default()
		}
		img, err := userland.Ensure(ctx, cache, spec, log)
		if err != nil {
			return nil, err
		}
		rootfs = img.Path
	}
	work, err := os.MkdirTemp("", "ringfence-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	initBin, err := BuildInit(ctx, src, work)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(work, "ringfence")
	if err := goBuild(ctx, src, "build", "-o", bin, "./cmd/ringfence"); err != nil {
		return nil, err
	}
	guestSec := 30
	var all []vminit.Step
	for _, st := range steps {
		if st.TimeoutSec <= 0 {
			st.TimeoutSec = 300
		}
		guestSec += st.TimeoutSec + 5
		all = append(all, st)
	}
	env := append([]string{guestPath}, g.Env...)
	m := &Machine{
		Kernel:   ks[0],
		Init:     initBin,
		Userland: rootfs,
		Files:    append([]File{{Path: GuestBinDir + "/ringfence", HostPath: bin, Mode: 0o755}}, g.Files...),
		Config:   vminit.Config{TimeoutSec: guestSec, Steps: all, Env: env},
		Timeout:  g.Timeout,
		Console:  g.Console,
		MemoryMB: g.MemoryMB,

		InstructionClock: g.InstructionClock,
	}
	if m.Timeout == 0 {
		m.Timeout = time.Duration(guestSec)*time.Second + time.Minute
	}
	with := ""
	if rootfs != "" {
		with = " with the Debian userland"
	}
	fmt.Fprintf(log, "booting %s%s\n", ks[0].Release, with)
	return m.Boot(ctx, work)
}

// Failed returns a message naming the steps of r that did not end with
// status 0, and r's problems, or "" if there are none.
func (r *Result) Failed() string {
	var msgs []string
	msgs = append(msgs, r.Problems...)
	for _, s := range r.Steps {
		if !s.Ended || s.Exit != 0 {
			msgs = append(msgs, fmt.Sprintf("step %s: exit %d", s.Name, s.Exit))
		}
	}
	return strings.Join(msgs, "; ")
}
