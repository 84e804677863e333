// Package vminit is the contract between the host side of ringfence's VM
// harness (package vm) and the program that runs as PID 1 inside the guest
// (internal/vminit/pid1): the configuration the host packs into the
// initramfs, and the marker lines the guest prints on the serial console.
//
// The package is plain data and text; it makes no system calls, so the host
// can import it without pulling in the guest's low-level code.
package vminit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ConfigPath is where the host puts the configuration in the initramfs.
const ConfigPath = "/ringfence/config.json"

// InitPath is where the host puts the PID 1 binary in the initramfs.
const InitPath = "/init"

// Environment variables the guest init sets for every step.
const (
	// EnvVM is set to "1" inside the VM. Tests that need a real kernel
	// check it and skip on the host.
	EnvVM = "RINGFENCE_IN_VM"
	// EnvRelease holds the kernel release the host meant to boot (as
	// uname -r prints it), so tests can check they run where they think.
	EnvRelease = "RINGFENCE_KERNEL_RELEASE"
)

// ContainerdDir is where the VM harness puts the containerds it builds
// from source (vm.ContainerdVersions), for the tests that run them besides
// the userland's own: one directory per version (such as
// /ringfence/containerd/v2.2.9) with containerd and
// containerd-shim-runc-v2. Not under
// /opt/containerd: containerd's "opt" plugin puts /opt/containerd/bin
// first on its shims' PATH, so any containerd would start the shim found
// there.
const ContainerdDir = "/ringfence/containerd"

// Config tells the guest init what to run. The host writes it as JSON at
// ConfigPath.
type Config struct {
	// Release is the kernel release (uname -r) the host meant to boot.
	Release string `json:"release,omitempty"`
	// TimeoutSec bounds the whole guest run; at the deadline the init
	// prints a TIMEOUT marker and powers off.
	TimeoutSec int `json:"timeout_sec"`
	// Env is added to every step's environment ("KEY=VALUE").
	Env []string `json:"env,omitempty"`
	// Steps run one after another, in order.
	Steps []Step `json:"steps"`
}

// Step is one program the guest runs.
type Step struct {
	// Name identifies the step in the markers (e.g. a package path).
	Name string `json:"name"`
	// Path is the program's absolute path in the guest.
	Path string `json:"path"`
	// Args are the program's arguments (without argv[0]).
	Args []string `json:"args,omitempty"`
	// Dir is the working directory; "/" if empty.
	Dir string `json:"dir,omitempty"`
	// TimeoutSec bounds this step; the program is killed at the deadline.
	TimeoutSec int `json:"timeout_sec"`
	// Env is added to this step's environment, after Config.Env.
	Env []string `json:"env,omitempty"`
}

// Encode returns c as JSON.
func (c Config) Encode() ([]byte, error) { return json.MarshalIndent(c, "", "  ") }

// DecodeConfig parses a Config written by Encode.
func DecodeConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("vminit config: %w", err)
	}
	return c, nil
}

// MarkerPrefix starts every line the guest init prints about its own
// progress. Everything else on the console is the steps' output or the
// kernel's.
const MarkerPrefix = "=== RINGFENCE "

// Kinds of marker lines.
const (
	KindBoot    = "BOOT"    // BOOT release=R filters=yes|no|error:E
	KindBegin   = "BEGIN"   // BEGIN name
	KindEnd     = "END"     // END name exit=N [timeout]
	KindDone    = "DONE"    // DONE: every step ran; the guest powers off
	KindTimeout = "TIMEOUT" // TIMEOUT: the guest deadline passed
	KindError   = "ERROR"   // ERROR message: the init itself failed
)

// Marker is one parsed marker line.
type Marker struct {
	Kind string
	// Name is the step name (BEGIN, END), or the message (ERROR).
	Name string
	// Exit is the step's exit status (END); -1 if it was killed.
	Exit int
	// TimedOut is true on an END whose step hit its deadline.
	TimedOut bool
	// Release and Filters are the BOOT fields: uname -r, and the result
	// of the init's io_uring BPF filter probe ("yes", "no", "error:...").
	Release, Filters string
}

// String formats m as the guest prints it.
func (m Marker) String() string {
	switch m.Kind {
	case KindBoot:
		return fmt.Sprintf("%s%s release=%s filters=%s", MarkerPrefix, m.Kind, m.Release, m.Filters)
	case KindBegin:
		return MarkerPrefix + m.Kind + " " + m.Name
	case KindEnd:
		s := fmt.Sprintf("%s%s %s exit=%d", MarkerPrefix, m.Kind, m.Name, m.Exit)
		if m.TimedOut {
			s += " timeout"
		}
		return s
	case KindError:
		return MarkerPrefix + m.Kind + " " + m.Name
	}
	return MarkerPrefix + m.Kind
}

// ParseMarker parses a console line. ok is false if the line is not a
// well-formed marker.
func ParseMarker(line string) (m Marker, ok bool) {
	rest, found := strings.CutPrefix(line, MarkerPrefix)
	if !found {
		return m, false
	}
	kind, rest, _ := strings.Cut(rest, " ")
	m.Kind = kind
	switch kind {
	case KindDone, KindTimeout:
		return m, rest == ""
	case KindError:
		m.Name = rest
		return m, true
	case KindBegin:
		m.Name = rest
		return m, rest != "" && !strings.ContainsAny(rest, " \t")
	case KindBoot:
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "release":
				m.Release = v
			case "filters":
				m.Filters = v
			}
		}
		return m, m.Release != "" && m.Filters != ""
	case KindEnd:
		f := strings.Fields(rest)
		if len(f) < 2 || len(f) > 3 || !strings.HasPrefix(f[1], "exit=") {
			return m, false
		}
		n, err := strconv.Atoi(strings.TrimPrefix(f[1], "exit="))
		if err != nil {
			return m, false
		}
		m.Name, m.Exit = f[0], n
		if len(f) == 3 {
			if f[2] != "timeout" {
				return m, false
			}
			m.TimedOut = true
		}
		return m, true
	}
	return m, false
}

// FigureMarker starts a test's log line that reports a figure: a count it
// measured in the kernel, as "RINGFENCE_FIGURE name=N" (see vmtest.Figure).
// The host harness sums each figure per kernel for the table of
// "ringfence vm test --markdown".
const FigureMarker = "RINGFENCE_FIGURE"
