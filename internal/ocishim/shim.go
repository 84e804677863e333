// Package ocishim is ringfence-runtime, an OCI runtime with runc's command
// line that fences containers with a ringfence policy and hands every
// command to the real runtime (runc, crun, or another).
//
// For "create" and "run" it rewrites the bundle's config.json when a policy
// applies (the org.ringfence.policy annotation, or the configuration's
// default policy when the annotations name none, the value "none"
// included, see ocifence.None; and the configuration's floor, always):
// the ringfence binary and the policies are bind-mounted read-only at
// /.ringfence, the process runs under "ringfence run" (one per policy,
// the floor outermost), and the seccomp profile allows io_uring_setup,
// io_uring_enter and io_uring_register (nothing else changes). The original is kept as
// config.json.ringfence-orig. For "exec" into a fenced container the new
// process is wrapped the same way. Every other command, and every
// container without a policy, passes through unchanged: the shim execs the
// real runtime with the same arguments.
//
// Policy files named by annotations, which whoever creates the container
// writes, are read only from the trusted policy directory (Config.PolicyDir;
// see ringfence.ResolvePolicyValue). Pod sandbox (pause) containers are
// left alone only when their runtime's sandbox-ID annotation is their own
// container ID: a claim to be a sandbox alone is not trusted.
//
// It fails closed: a bad policy, a kernel without io_uring filters, or one
// on which the program could shed its filters makes "create" fail with an
// error that says why, and the real runtime is not run; only the
// org.ringfence.if-supported annotation or the ifSupported setting lets
// such a container start, and then with its original config.json.
package ocishim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccompprofile"
)

// Name is the name the ringfence binary answers to as an OCI runtime.
const Name = "ringfence-runtime"

// OriginalConfig is the name, in the bundle, of the config.json as it was
// before the shim rewrote it.
const OriginalConfig = "config.json.ringfence-orig"

// StateDir is the directory, in the bundle, that holds the policy mounted
// into the container and the process files of fenced "exec"s.
const StateDir = "ringfence"

// Shim is one invocation of ringfence-runtime.
type Shim struct {
	// ConfigPath is the configuration file (DefaultConfigPath).
	ConfigPath string
	// Getenv reads the environment (RINGFENCE_RUNTIME).
	Getenv func(string) string
	// Environ is the environment handed to the real runtime.
	Environ []string
	// Kernel is the running kernel, asked whether it can fence.
	Kernel ringfence.Kernel
	// Self is this executable: the default binary mounted into
	// containers, and a runtime the shim must not hand commands to.
	Self string
	// Stderr receives errors and warnings.
	Stderr io.Writer
	// Exec replaces the process with the real runtime (syscall.Exec,
	// which returns only on failure).
	Exec func(path string, argv, env []string) error
}

// Main runs ringfence-runtime with args (without the program name) and
// returns the exit status; on success it does not return, having
// executed the real runtime.
func Main(args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot find its own executable: %v\n", Name, err)
		return 1
	}
	s := &Shim{
		ConfigPath: DefaultConfigPath,
		Getenv:     os.Getenv,
		Environ:    os.Environ(),
		Kernel:     ringfence.Host(),
		Self:       self,
		Stderr:     stderr,
		Exec:       syscall.Exec,
	}
	return s.Run(args)
}

// Run handles one command line and returns the exit status if it does not
// exec the real runtime.
func (s *Shim) Run(args []string) int {
	g, rest, err := splitGlobal(args)
	cmd := ""
	if len(rest) > 0 {
		cmd = rest[0]
	}
	fail := func(err error) int {
		s.fail(g, cmd, err)
		return 1
	}
	if err != nil {
		return fail(err)
	}
	cfg, err := LoadConfig(s.ConfigPath)
	if err != nil {
		return fail(err)
	}
	real, err := s.realRuntime(cfg)
	if err != nil {
		return fail(err)
	}
	switch cmd {
	case "create", "run":
		if err := s.create(g, cfg, rest[1:]); err != nil {
			return fail(err)
		}
	case "exec":
		rest, err = s.exec(g, real, rest)
		if err != nil {
			return fail(err)
		}
	}
	argv := append([]string{real}, g.args...)
	argv = append(argv, rest...)
	if err := s.Exec(real, argv, s.Environ); err != nil {
		return fail(fmt.Errorf("exec %s: %w", real, err))
	}
	return 0 // only an Exec that returns does so

}

// realRuntime returns the path of the runtime to hand commands to:
// RINGFENCE_RUNTIME, else the configuration's runtime, else runc.
func (s *Shim) realRuntime(cfg Config) (string, error) {
	name, from := "runc", "the default runtime"
	if cfg.Runtime != "" {
		name, from = cfg.Runtime, s.ConfigPath+": runtime"
	}
	if v := s.Getenv(RuntimeEnv); v != "" {
		name, from = v, RuntimeEnv
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s names %q: %w", from, name, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if filepath.Base(path) == Name || s.sameAsSelf(path) {
		return "", fmt.Errorf("%s names %q, which is ringfence-runtime itself; name the real runtime (runc, crun)", from, name)
	}
	return path, nil
}

func (s *Shim) sameAsSelf(path string) bool {
	a, err1 := os.Stat(path)
	b, err2 := os.Stat(s.Self)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// fail reports err on stderr and, like runc, in the --log file (JSON
// with --log-format json), where containerd and Podman look for the
// reason a runtime failed.
func (s *Shim) fail(g globals, cmd string, err error) {
	msg := fmt.Sprintf("%s: %v", Name, err)
	if cmd != "" {
		msg = fmt.Sprintf("%s %s: %v", Name, cmd, err)
	}
	fmt.Fprintln(s.Stderr, msg)
	s.logLine(g, "error", msg)
}

// warn reports a warning the same way.
func (s *Shim) warn(g globals, msg string) {
	msg = Name + ": warning: " + msg
	fmt.Fprintln(s.Stderr, msg)
	s.logLine(g, "warning", msg)
}

func (s *Shim) logLine(g globals, level, msg string) {
	if g.log == "" {
		return
	}
	f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(f, "%s\n", b)
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

// containerName returns the Kubernetes container name containerd or
// CRI-O put into the annotations.
func containerName(ann map[string]string) string {
	for _, k := range []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"} {
		if v := ann[k]; v != "" {
			return v
		}
	}
	return ""
}

// sandboxKeys returns the annotations by which containerd and CRI-O mark
// a pod's sandbox (pause) container: its type, and the sandbox's ID,
// which for the sandbox container itself is its own container ID.
func sandboxKeys() [][2]string {
	return [][2]string{
		{"io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"},   // containerd
		{"io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"}, // CRI-O
	}
}

// isSandbox reports whether the container id is a pod's sandbox (pause)
// container, and whether its annotations claim to be one. A claim alone
// is not trusted: annotations may come from the pod's author (containerd
// passes pod annotations matching pod_annotations and overwrites only its
// own keys, CRI-O those its allowed_annotations lets through and
// overwrites only its own; Docker and Podman take any). Only the runtime
// that creates the sandbox knows its ID before the container exists, so
// a sandbox is a container marked as one whose sandbox ID is its own ID.
func isSandbox(ann map[string]string, id string) (sandbox, claimed bool) {
	for _, k := range sandboxKeys() {
		if ann[k[0]] != "sandbox" {
			continue
		}
		claimed = true
		if id != "" && ann[k[1]] == id {
			return true, true
		}
	}
	return false, claimed
}

// create rewrites the bundle of "create" or "run" (args after the command
// name) if a policy applies to the container.
func (s *Shim) create(g globals, cfg Config, args []string) error {
	p, err := createFlags.parse(args, true)
	if err != nil {
		return err
	}
	id := ""
	if len(p.pos) > 0 {
		id = args[p.pos[0]]
	}
	bundle, _, _ := p.value("bundle", "b")
	if bundle == "" {
		bundle = "."
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return err
	}
	configPath := filepath.Join(bundle, "config.json")
	if c, _, ok := p.value("config", "f"); ok {
		configPath = c
		if !filepath.IsAbs(c) {
			configPath = filepath.Join(bundle, c)
		}
	}
	return s.fence(g, cfg, id, bundle, configPath)
}

// fence rewrites the config.json at configPath of the bundle of
// container id, if a policy applies to it.
func (s *Shim) fence(g globals, cfg Config, id, bundle, configPath string) error {
	data, err := readlimit.File(configPath)
	if err != nil {
		return err
	}
	c, err := parseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	sandbox, claimed := isSandbox(c.annotations, id)
	if sandbox {
		return nil // the pause container runs no workload
	}
	if claimed {
		s.warn(g, fmt.Sprintf("container %s is marked as a pod sandbox but its sandbox ID is not its own: fenced like any other container", id))
	}
	name := containerName(c.annotations)
	if s.fencedBefore(cfg, c, bundle) {
		return nil // rewritten already (a second create of the same bundle)
	}
	layers, ifSupported, err := s.policies(cfg, c, name)
	if err != nil || len(layers) == 0 {
		return err
	}
	for _, l := range layers {
		if err := ocifence.Check(s.Kernel, l.pol); err != nil {
			if errors.Is(err, ocifence.ErrCannotFence) && ifSupported {
				s.warn(g, fmt.Sprintf("starting the container WITHOUT its io_uring policy and with its seccomp profile unchanged (if-supported): %v", err))
				return nil
			}
			return fmt.Errorf("not starting the container: %w", err)
		}
	}
	if err := s.checkSeccomp(g, cfg, c, layers); err != nil {
		return err
	}
	binary := s.binary(cfg)
	if st, err := os.Stat(binary); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("the ringfence binary to mount into the container, %s, is not a regular file (%v)", binary, err)
	}
	if len(c.args) == 0 {
		return errors.New("config.json has no process.args to run under the policy")
	}
	for _, m := range c.mounts {
		if m.Destination == ocifence.Dir || strings.HasPrefix(filepath.Clean(m.Destination), ocifence.Dir+"/") {
			return fmt.Errorf("config.json already mounts %s, where ringfence-runtime mounts the policy and its binary", m.Destination)
		}
	}
	stateDir := filepath.Join(bundle, StateDir)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	mounts := []specs.Mount{ocifence.Mount(binary, ocifence.BinaryPath)}
	var dests []string
	for _, l := range layers {
		file := filepath.Join(stateDir, filepath.Base(l.dest))
		if err := writeFile(file, l.source, 0o644); err != nil {
			return err
		}
		mounts = append(mounts, ocifence.Mount(file, l.dest))
		dests = append(dests, l.dest)
	}
	orig := filepath.Join(filepath.Dir(configPath), OriginalConfig)
	if err := writeFile(orig, data, 0o644); err != nil {
		return err
	}
	if err := c.fence(ocifence.Wrap(c.args, ifSupported, dests...), mounts); err != nil {
		return err
	}
	out, err := c.marshal()
	if err != nil {
		return err
	}
	return writeFile(configPath, out, 0o644)
}

// layer is one policy a container runs under, and where it is mounted.
type layer struct {
	pol    *policy.Policy
	source []byte
	dest   string // ocifence.FloorPath or ocifence.PolicyPath
}

// policies returns the policies that hold the container, outermost
// first: the configuration's floor, then the annotation's policy or else
// the configuration's default; none when nothing applies. ifSupported
// says whether the container may start without them where the kernel
// cannot fence.
//
// Annotations are written by whoever creates the container, who may not
// be trusted with the host's files: the files they name come from the
// policy directory only. The floor and the default are the
// administrator's, read from files in the configuration's directory. The
// default applies when no annotation names a policy ("none" names none);
// the floor always, so an annotation's policy, whatever it allows, runs
// inside it. The if-supported annotation may start a container without
// the annotation's own policy, never without the administrator's: then
// only the configuration's ifSupported can.
func (s *Shim) policies(cfg Config, c *config, name string) (layers []layer, ifSupported bool, err error) {
	choice, ok, err := ocifence.Choose(c.annotations, name)
	if err != nil {
		return nil, false, err
	}
	cfgDir := filepath.Dir(s.ConfigPath)
	add := func(v, src, dir, dest string) error {
		pol, source, err := ringfence.ResolvePolicyValue(v, src, dir)
		if err == nil {
			layers = append(layers, layer{pol: pol, source: source, dest: dest})
		}
		return err
	}
	if cfg.Floor != "" {
		if err := add(cfg.Floor, s.ConfigPath+": floor", cfgDir, ocifence.FloorPath); err != nil {
			return nil, false, err
		}
	}
	switch {
	case ok:
		err = add(choice.Value, "annotation "+choice.Key, cfg.PolicyDirectory(), ocifence.PolicyPath)
		ifSupported = choice.IfSupported && cfg.Floor == ""
	case cfg.Policy != "":
		err = add(cfg.Policy, s.ConfigPath+": policy", cfgDir, ocifence.PolicyPath)
	}
	if err != nil {
		return nil, false, err
	}
	return layers, ifSupported || cfg.IfSupported, nil
}

// binary is the ringfence binary mounted into fenced containers.
func (s *Shim) binary(cfg Config) string {
	if cfg.Binary != "" {
		return cfg.Binary
	}
	return s.Self
}

// fencedBefore reports whether c is the bundle's config.json as fence
// wrote it: marked, wrapped, and mounting this shim's binary and a policy
// file of the bundle's own. The mark and the arguments alone may be the
// container creator's, with a /.ringfence/ringfence of the image's own.
func (s *Shim) fencedBefore(cfg Config, c *config, bundle string) bool {
	if c.annotations[ocifence.FencedKey] != "true" || !ocifence.IsWrapped(c.args) {
		return false
	}
	has := func(w specs.Mount) bool {
		return slices.ContainsFunc(c.mounts, func(m specs.Mount) bool { return m.Destination == w.Destination && m.Source == w.Source })
	}
	stateDir := filepath.Join(bundle, StateDir)
	return has(ocifence.Mount(s.binary(cfg), ocifence.BinaryPath)) &&
		(has(ocifence.Mount(filepath.Join(stateDir, "policy.yaml"), ocifence.PolicyPath)) ||
			has(ocifence.Mount(filepath.Join(stateDir, "floor.yaml"), ocifence.FloorPath)))
}

// checkSeccomp runs the bypass check of the policies against the
// container's seccomp profile, as the configuration's seccompCheck says.
// The container runs under all of them, so it can do through io_uring
// only what every one allows: one policy without bypasses is enough, and
// the error reports the innermost one's.
func (s *Shim) checkSeccomp(g globals, cfg Config, c *config, layers []layer) error {
	mode, err := ocifence.ParseSeccompCheck(cfg.SeccompCheck)
	if err != nil || mode == ocifence.SeccompOff {
		return err
	}
	sc, err := c.seccomp()
	if err != nil {
		return err
	}
	v, err := s.Kernel.Version()
	if err != nil {
		return err
	}
	var bs []seccompprofile.Bypass
	for _, l := range layers {
		if bs, err = ocifence.Bypasses(sc, l.pol, v); err != nil {
			return fmt.Errorf("seccomp check: %w", err)
		}
		if len(bs) == 0 {
			return nil
		}
	}
	if mode == ocifence.SeccompWarn {
		s.warn(g, ocifence.BypassError(bs).Error())
		return nil
	}
	return fmt.Errorf("not starting the container: %w", ocifence.BypassError(bs))
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// exec wraps the process of "exec" (args from the command name on) in
// "ringfence run" when the container is fenced, and returns the new args.
func (s *Shim) exec(g globals, real string, args []string) ([]string, error) {
	p, err := execFlags.parse(args[1:], false)
	if err != nil {
		return nil, fmt.Errorf("%w (ringfence-runtime cannot tell the container from the command)", err)
	}
	if len(p.pos) == 0 {
		return args, nil // no container: the runtime says so
	}
	id := args[1+p.pos[0]]
	bundle, err := s.bundleOf(g, real, id)
	if err != nil {
		return nil, err
	}
	data, err := readlimit.File(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	c, err := parseConfig(data)
	if err != nil {
		return nil, err
	}
	if c.annotations[ocifence.FencedKey] != "true" {
		// A create with --config fenced another file; its policy is
		// still in the bundle's state directory.
		for _, f := range []string{"policy.yaml", "floor.yaml"} {
			_, err := os.Lstat(filepath.Join(bundle, StateDir, f))
			switch {
			case err == nil:
				return nil, fmt.Errorf("container %s has a ringfence policy in %s but its config.json is not marked %s (created with --config?): refusing exec", id, filepath.Join(bundle, StateDir), ocifence.FencedKey)
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("cannot tell whether container %s is fenced: %w", id, err)
			}
		}
		return args, nil
	}
	// The new process runs under the same "ringfence run"s as the
	// container's: its policy, and the floor.
	wrappers, _, ok := ocifence.Unwrap(c.args)
	if !ok {
		return nil, fmt.Errorf("container %s is marked %s but its process does not run under ringfence: refusing exec", id, ocifence.FencedKey)
	}
	out := append([]string(nil), args...)
	if file, idx, ok := p.value("process", "p"); ok {
		newFile, err := wrapProcessFile(file, filepath.Join(bundle, StateDir), wrappers)
		if err != nil {
			return nil, err
		}
		if tok := out[1+idx]; isFlag(tok) && strings.Contains(tok, "=") {
			name, _, _ := strings.Cut(tok, "=")
			out[1+idx] = name + "=" + newFile
		} else {
			out[1+idx] = newFile
		}
		return out, nil
	}
	cmd := out[1+p.pos[0]+1:]
	if len(cmd) == 0 {
		return args, nil // no command: the runtime says so
	}
	return append(out[:1+p.pos[0]+1], slices.Concat(wrappers, cmd)...), nil
}

// bundleOf asks the real runtime for the bundle of container id.
func (s *Shim) bundleOf(g globals, real, id string) (string, error) {
	argv := append(append([]string(nil), g.args...), "state", id)
	cmd := exec.Command(real, argv...)
	cmd.Env = s.Environ
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot tell whether container %s is fenced: %s state: %v %s", id, real, err, strings.TrimSpace(stderr.String()))
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil || st.Bundle == "" {
		return "", fmt.Errorf("cannot tell whether container %s is fenced: %s state printed no bundle (%v)", id, real, err)
	}
	return st.Bundle, nil
}

// wrapProcessFile writes a copy of the process file of "exec --process"
// whose args run under the wrappers into dir, and returns its path.
func wrapProcessFile(file, dir string, wrappers []string) (string, error) {
	data, err := readlimit.File(file)
	if err != nil {
		return "", err
	}
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(data, &proc); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	var args []string
	if err := json.Unmarshal(proc["args"], &args); err != nil || len(args) == 0 {
		return "", fmt.Errorf("%s: no process args to run under the policy", file)
	}
	proc["args"], _ = json.Marshal(slices.Concat(wrappers, args))
	out, err := json.Marshal(proc)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "exec-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(out); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}
