package ocishim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

var (
	k73  = ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 3}}
	k70  = ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 0}}
	k619 = ocitest.Kernel{Unsupported: errors.New("this kernel (6.19.14) has no io_uring BPF filters"), Release: abi.Version{Major: 6, Minor: 19}}
)

// fakeRuntime writes a shell script named name into dir that answers
// "state" with a state whose bundle is $FAKE_BUNDLE, and returns its path.
func fakeRuntime(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = state ] && printf '{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"running\",\"bundle\":\"%s\"}' \"$FAKE_BUNDLE\" && exit 0; done\nexit 0\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// bundle writes a bundle whose config.json has the annotations and Docker's
// default seccomp profile, plus a field the runtime-spec types do not know.
func bundle(t *testing.T, ann map[string]string, seccomp *specs.LinuxSeccomp) (dir string, config []byte) {
	t.Helper()
	dir = t.TempDir()
	spec := map[string]any{
		"ociVersion": "1.2.0",
		"process": map[string]any{
			"args": []string{"postgres", "-c", "io_method=io_uring"},
			"env":  []string{"PATH=/usr/bin:/bin"},
			"cwd":  "/",
			"user": map[string]any{"uid": 999, "gid": 999},
		},
		"root":                  map[string]any{"path": "rootfs"},
		"mounts":                []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		"org.example.extension": map[string]any{"kept": true},
		"linux":                 map[string]any{"seccomp": seccomp, "namespaces": []map[string]string{{"type": "pid"}}},
	}
	if ann != nil {
		spec["annotations"] = ann
	}
	config, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, config
}

// env is a test shim: a fake runtime, a kernel, and what it executed.
type env struct {
	dir      string
	shim     *Shim
	real     string
	execPath string
	execArgv []string
	stderr   bytes.Buffer
	envVars  map[string]string
}

func newEnv(t *testing.T, k ocitest.Kernel, configYAML string) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), envVars: map[string]string{}}
	e.real = fakeRuntime(t, e.dir, "runc")
	self := filepath.Join(e.dir, "ringfence")
	if err := os.WriteFile(self, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(e.dir, "runtime.yaml")
	if configYAML != "" {
		if err := os.WriteFile(cfgPath, []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.envVars[RuntimeEnv] = e.real
	e.shim = &Shim{
		ConfigPath: cfgPath,
		Getenv:     func(k string) string { return e.envVars[k] },
		Environ:    []string{"PATH=" + e.dir + ":/usr/bin:/bin"},
		Kernel:     k,
		Self:       self,
		Stderr:     &e.stderr,
		Exec: func(path string, argv, env []string) error {
			e.execPath, e.execArgv = path, argv
			return nil
		},
	}
	return e
}

// run runs the shim and returns its status (0 after a recorded exec).
func (e *env) run(args ...string) int { return e.shim.Run(args) }

func (e *env) executed() bool { return e.execPath != "" }

func readSpec(t *testing.T, path string) specs.Spec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateFences(t *testing.T) {
	for _, cmd := range []string{"create", "run"} {
		t.Run(cmd, func(t *testing.T) {
			e := newEnv(t, k73, "")
			b, orig := bundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"}, ocitest.DockerSeccomp(t))
			log := filepath.Join(e.dir, "log.json")
			args := []string{"--root", "/run/runc", "--log", log, "--log-format", "json", "--systemd-cgroup", cmd, "--bundle", b, "--pid-file", "/run/c1.pid", "c1"}
			e.run(args...)
			if !e.executed() {
				t.Fatalf("the real runtime was not executed; stderr: %s", e.stderr.String())
			}
			if e.execPath != e.real || !slices.Equal(e.execArgv, append([]string{e.real}, args...)) {
				t.Errorf("executed %s %q, want %s with the same arguments %q", e.execPath, e.execArgv, e.real, args)
			}
			kept, err := os.ReadFile(filepath.Join(b, OriginalConfig))
			if err != nil || !bytes.Equal(kept, orig) {
				t.Errorf("original config.json not kept byte for byte (%v)", err)
			}
			pol, err := os.ReadFile(filepath.Join(b, StateDir, "policy.yaml"))
			// storage extends base: the file holds it flattened, so the
			// container runs what was checked whatever its own files.
			_, want, _ := ringfence.ResolvePolicyValue("profile:storage", "test", "/")
			if flat, perr := policy.ParseWith(pol, "policy.yaml", noBases{}); err != nil || perr != nil || !bytes.Equal(pol, want) {
				t.Errorf("policy file: %v %v; want the storage profile's flattened source", err, perr)
			} else if stor, _ := ringfence.Profile("storage"); len(flat.Rules) != len(stor.Rules) {
				t.Errorf("policy file has %d rules, the storage profile %d", len(flat.Rules), len(stor.Rules))
			}
			s := readSpec(t, filepath.Join(b, "config.json"))
			wantArgs := ocifence.Args([]string{"postgres", "-c", "io_method=io_uring"}, false)
			if !slices.Equal(s.Process.Args, wantArgs) {
				t.Errorf("process.args = %q, want %q", s.Process.Args, wantArgs)
			}
			wantMounts := append([]specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}, ocifence.Mounts(e.shim.Self, filepath.Join(b, StateDir, "policy.yaml"))...)
			if got, _ := json.Marshal(s.Mounts); string(got) != string(mustJSON(wantMounts)) {
				t.Errorf("mounts = %s, want %s", got, mustJSON(wantMounts))
			}
			wantSeccomp, _ := ocifence.OpenSeccomp(ocitest.DockerSeccomp(t))
			if got, _ := json.Marshal(s.Linux.Seccomp); string(got) != string(mustJSON(wantSeccomp)) {
				t.Errorf("seccomp not opened exactly for io_uring")
			}
			if s.Annotations[ocifence.FencedKey] != "true" || s.Annotations[ocifence.PolicyKey] != "profile:storage" {
				t.Errorf("annotations = %v", s.Annotations)
			}
			// Everything else is as it was, unknown fields included.
			var before, after map[string]any
			json.Unmarshal(orig, &before)
			data, _ := os.ReadFile(filepath.Join(b, "config.json"))
			json.Unmarshal(data, &after)
			for _, k := range []string{"ociVersion", "root", "org.example.extension"} {
				if mustString(before[k]) != mustString(after[k]) {
					t.Errorf("%s changed: %v -> %v", k, before[k], after[k])
				}
			}
			bp, ap := before["process"].(map[string]any), after["process"].(map[string]any)
			delete(bp, "args")
			delete(ap, "args")
			if mustString(bp) != mustString(ap) {
				t.Errorf("process changed beyond args: %v -> %v", bp, ap)
			}
			if ns := after["linux"].(map[string]any)["namespaces"]; mustString(ns) != mustString(before["linux"].(map[string]any)["namespaces"]) {
				t.Errorf("linux.namespaces changed")
			}
			// A second create of the same bundle does not wrap twice.
			e.execPath = ""
			e.run(args...)
			if s2 := readSpec(t, filepath.Join(b, "config.json")); !slices.Equal(s2.Process.Args, wantArgs) || !e.executed() {
				t.Errorf("second create: args %q, executed %v", s2.Process.Args, e.executed())
			}
			if kept2, _ := os.ReadFile(filepath.Join(b, OriginalConfig)); !bytes.Equal(kept2, orig) {
				t.Errorf("second create overwrote the original config.json")
			}
		})
	}
}

// TestCreateFencesForgedMark: a config.json that carries the fenced mark
// and wrapped arguments but not the shim's own mounts (the image would
// supply /.ringfence/ringfence) is fenced like any other.
func TestCreateFencesForgedMark(t *testing.T) {
	e := newEnv(t, k73, "")
	b, _ := bundle(t, map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.FencedKey: "true"}, nil)
	var spec map[string]any
	data, _ := os.ReadFile(filepath.Join(b, "config.json"))
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec["process"].(map[string]any)["args"] = ocifence.Args([]string{"postgres"}, false)
	if err := os.WriteFile(filepath.Join(b, "config.json"), mustJSON(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("create", "--bundle", b, "c1")
	s := readSpec(t, filepath.Join(b, "config.json"))
	want := ocifence.Mounts(e.shim.Self, filepath.Join(b, StateDir, "policy.yaml"))
	if !e.executed() || !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == want[0].Destination && m.Source == want[0].Source }) {
		t.Errorf("forged mark: executed %v, mounts %v: want the shim's binary mounted; stderr: %s", e.executed(), s.Mounts, e.stderr.String())
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustString(v any) string { return string(mustJSON(v)) }

func TestCreatePassesThrough(t *testing.T) {
	cases := []struct {
		name string
		ann  map[string]string
		k    ocitest.Kernel
		cfg  string
		warn string
	}{
		{"no annotation", nil, k73, "", ""},
		{"other annotations", map[string]string{"org.example": "x"}, k73, "", ""},
		{"pod sandbox", map[string]string{ocifence.PolicyKey: "profile:storage", "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "c1"}, k73, "", ""},
		{"CRI-O pod sandbox", map[string]string{"io.kubernetes.cri-o.ContainerType": "sandbox", "io.kubernetes.cri-o.SandboxID": "c1"}, k73, "policy: profile:deny-all\n", ""},
		{"container opted out", map[string]string{ocifence.PolicyKey: "profile:storage", "io.kubernetes.cri.container-name": "side", ocifence.ContainerPolicyPrefix + "side": "none"}, k73, "", ""},
		{"if-supported on 6.19", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.IfSupportedKey: "true"}, k619, "", "WITHOUT its io_uring policy"},
		{"config if-supported on 7.0", map[string]string{ocifence.PolicyKey: "profile:storage"}, k70, "ifSupported: true\n", "execve"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.k, c.cfg)
			b, orig := bundle(t, c.ann, ocitest.DockerSeccomp(t))
			e.run("create", "-b", b, "c1")
			if !e.executed() {
				t.Fatalf("not executed: %s", e.stderr.String())
			}
			data, _ := os.ReadFile(filepath.Join(b, "config.json"))
			if !bytes.Equal(data, orig) {
				t.Error("config.json was rewritten")
			}
			if _, err := os.Stat(filepath.Join(b, OriginalConfig)); err == nil {
				t.Error("an original copy was written for a container that was not fenced")
			}
			if c.warn == "" && e.stderr.Len() > 0 || c.warn != "" && !strings.Contains(e.stderr.String(), c.warn) {
				t.Errorf("stderr %q, want a warning with %q", e.stderr.String(), c.warn)
			}
		})
	}
}

func TestCreateFailsClosed(t *testing.T) {
	cases := []struct {
		name string
		ann  map[string]string
		k    ocitest.Kernel
		cfg  string
		err  string
	}{
		{"no filters", map[string]string{ocifence.PolicyKey: "profile:storage"}, k619, "", "not starting the container: this kernel cannot fence the container: this kernel (6.19.14) has no io_uring BPF filters"},
		{"7.0 sheds filters at exec", map[string]string{ocifence.PolicyKey: "profile:storage"}, k70, "", "io_uring: preserve task restrictions across exec"},
		{"bad inline policy", map[string]string{ocifence.PolicyKey: "version: 1\ndefault: deny\nrules:\n  - ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: AF_INTE\n"}, k73, "", "annotation org.ringfence.policy:7:22: unknown"},
		{"missing policy file", map[string]string{ocifence.PolicyKey: "policies/db.yaml"}, k73, "", `names "policies/db.yaml": ` + ringfence.DefaultPolicyDir + "/policies/db.yaml: the policy directory cannot be opened"},
		{"unknown profile", map[string]string{ocifence.PolicyKey: "profile:nope"}, k73, "", "unknown profile"},
		{"bad if-supported", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.IfSupportedKey: "1"}, k73, "", "want true or false"},
		{"bad default policy", nil, k73, "policy: profile:nope\n", "runtime.yaml: policy: unknown profile"},
		{"bad config key", nil, k73, "runtime: runc\npolicies: x\n", `runtime.yaml:2: unknown key "policies"`},
		{"if-supported does not excuse a bad policy", map[string]string{ocifence.PolicyKey: "profile:nope", ocifence.IfSupportedKey: "true"}, k619, "", "unknown profile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.k, c.cfg)
			b, orig := bundle(t, c.ann, ocitest.DockerSeccomp(t))
			log := filepath.Join(e.dir, "log.json")
			if code := e.run("--log", log, "--log-format=json", "create", "--bundle="+b, "c1"); code != 1 || e.executed() {
				t.Fatalf("exit %d, executed %v: the container must not be created", code, e.executed())
			}
			if !strings.Contains(e.stderr.String(), c.err) || !strings.HasPrefix(e.stderr.String(), "ringfence-runtime create: ") {
				t.Errorf("stderr %q, want %q", e.stderr.String(), c.err)
			}
			data, _ := os.ReadFile(log)
			var line struct{ Level, Msg string }
			if err := json.Unmarshal(data, &line); err != nil || line.Level != "error" || !strings.Contains(line.Msg, c.err) {
				t.Errorf("log file %q: want one JSON error line with %q (%v)", data, c.err, err)
			}
			if now, _ := os.ReadFile(filepath.Join(b, "config.json")); !bytes.Equal(now, orig) {
				t.Error("config.json changed although create failed")
			}
		})
	}
}

func TestCreateUnknownSeccompField(t *testing.T) {
	e := newEnv(t, k73, "")
	b, _ := bundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"}, nil)
	data, _ := os.ReadFile(filepath.Join(b, "config.json"))
	data = bytes.Replace(data, []byte(`"seccomp": null`), []byte(`"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "futureField": 1}`), 1)
	os.WriteFile(filepath.Join(b, "config.json"), data, 0o644)
	if code := e.run("create", "--bundle", b, "c1"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), "futureField") {
		t.Errorf("exit %d executed %v stderr %q: want a refusal naming the unknown field", code, e.executed(), e.stderr.String())
	}
}

// TestCreatePolicyDirectory: policy files named by annotations, or
// extended by them, come only from the configured policy directory; every
// other file is refused before the real runtime runs, with an error that
// names the annotation and never the content of a file outside.
func TestCreatePolicyDirectory(t *testing.T) {
	dir, cases := ocitest.PolicyDir(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			e := newEnv(t, k73, "policyDir: "+dir+"\n")
			b, orig := bundle(t, map[string]string{ocifence.PolicyKey: c.Value}, ocitest.DockerSeccomp(t))
			code := e.run("create", "--bundle", b, "c1")
			if c.Err == "" {
				pol, err := os.ReadFile(filepath.Join(b, StateDir, "policy.yaml"))
				if code != 0 || !e.executed() || err != nil {
					t.Fatalf("exit %d executed %v (%v): %s", code, e.executed(), err, e.stderr.String())
				}
				fromFile := !strings.Contains(c.Value, "extends: default")
				if p, err := policy.ParseWith(pol, "policy.yaml", noBases{}); err != nil || p.Default != policy.Deny || fromFile != strings.Contains(string(pol), ocitest.PolicyDirRule) {
					t.Errorf("mounted policy %q: %v", pol, err)
				}
				return
			}
			msg := e.stderr.String()
			if code != 1 || e.executed() {
				t.Fatalf("exit %d executed %v: %q must be refused", code, e.executed(), c.Value)
			}
			if !strings.Contains(msg, c.Err) || !strings.Contains(msg, "annotation "+ocifence.PolicyKey) || strings.Contains(msg, ocitest.OutsideSecret) {
				t.Errorf("stderr %q: want the annotation and %q, never the outside file's content", msg, c.Err)
			}
			if now, _ := os.ReadFile(filepath.Join(b, "config.json")); !bytes.Equal(now, orig) {
				t.Error("config.json changed although create failed")
			}
		})
	}
	// Without policyDir, the default directory is the trusted one: a file
	// next to the bundle, as the old shim read it, is refused.
	e := newEnv(t, k73, "")
	b, _ := bundle(t, map[string]string{ocifence.PolicyKey: "config.json"}, nil)
	if code := e.run("create", "--bundle", b, "c1"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), ringfence.DefaultPolicyDir) {
		t.Errorf("exit %d stderr %q: want a refusal naming %s", code, e.stderr.String(), ringfence.DefaultPolicyDir)
	}
	if _, err := ParseConfig([]byte("policyDir: policies\n"), "runtime.yaml"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative policyDir: %v", err)
	}
}

// TestDefaultPolicyFileFromConfig: the configuration's default policy, the
// administrator's, may name a file in the configuration's directory.
func TestDefaultPolicyFileFromConfig(t *testing.T) {
	e := newEnv(t, k73, "policy: default.yaml\n")
	if err := os.WriteFile(filepath.Join(e.dir, "default.yaml"), []byte("version: 1\nextends: deny-all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := bundle(t, nil, ocitest.DockerSeccomp(t))
	if code := e.run("create", "--bundle", b, "c1"); code != 0 || !e.executed() {
		t.Fatalf("exit %d: %s", code, e.stderr.String())
	}
}

func TestDefaultPolicyFromConfig(t *testing.T) {
	e := newEnv(t, k73, "policy: profile:deny-all\n")
	b, _ := bundle(t, nil, ocitest.DockerSeccomp(t))
	e.run("create", "--bundle", b, "c1")
	s := readSpec(t, filepath.Join(b, "config.json"))
	pol, _ := os.ReadFile(filepath.Join(b, StateDir, "policy.yaml"))
	want, _ := profiles.Get("deny-all")
	if !e.executed() || !ocifence.IsWrapped(s.Process.Args) || !bytes.Equal(pol, want) {
		t.Errorf("executed %v args %q policy ok %v", e.executed(), s.Process.Args, bytes.Equal(pol, want))
	}
}

func TestRuntimeSelection(t *testing.T) {
	e := newEnv(t, k73, "")
	crun := fakeRuntime(t, e.dir, "crun")
	cases := []struct {
		name, cfg, env, want, err string
	}{
		{"environment", "", e.real, e.real, ""},
		{"config by name on PATH", "runtime: crun\n", "", crun, ""},
		{"environment wins", "runtime: crun\n", e.real, e.real, ""},
		{"missing", "runtime: nosuch-runtime\n", "", "", `runtime.yaml: runtime names "nosuch-runtime"`},
		{"itself", "", e.shim.Self, "", "ringfence-runtime itself"},
		{"by its name", "runtime: " + filepath.Join(e.dir, "ringfence-runtime") + "\n", "", "", "ringfence-runtime itself"},
	}
	os.WriteFile(filepath.Join(e.dir, "ringfence-runtime"), []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("PATH", e.dir+":"+os.Getenv("PATH"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(e.shim.ConfigPath, []byte(c.cfg), 0o644)
			e.envVars[RuntimeEnv] = c.env
			e.execPath, e.stderr = "", bytes.Buffer{}
			code := e.run("kill", "c1", "KILL")
			if c.err != "" {
				if code != 1 || e.executed() || !strings.Contains(e.stderr.String(), c.err) {
					t.Errorf("exit %d executed %v stderr %q; want %q", code, e.executed(), e.stderr.String(), c.err)
				}
				return
			}
			if e.execPath != c.want {
				t.Errorf("executed %q, want %q (%s)", e.execPath, c.want, e.stderr.String())
			}
		})
	}
}

func TestPassThrough(t *testing.T) {
	cases := [][]string{
		{"state", "c1"},
		{"--root", "/run/runc", "kill", "c1", "SIGTERM"},
		{"--root=/run/crun", "--systemd-cgroup", "delete", "--force", "c1"},
		{"--log", "/tmp/l", "--log-format", "text", "start", "c1"},
		{"--debug", "ps", "--format", "json", "c1"},
		{"features"},
		{"--version"},
		{"spec", "--rootless"},
		{"checkpoint", "--image-path", "/x", "c1"},
		{},
	}
	for _, args := range cases {
		e := newEnv(t, k619, "")
		e.run(args...)
		if !slices.Equal(e.execArgv, append([]string{e.real}, args...)) {
			t.Errorf("%q: executed %q", args, e.execArgv)
		}
	}
}

// fencedBundle creates a fenced container's bundle through the shim and
// returns the test env with FAKE_BUNDLE pointing at it.
func fencedBundle(t *testing.T, ann map[string]string) (*env, string) {
	t.Helper()
	e := newEnv(t, k73, "")
	b, _ := bundle(t, ann, ocitest.DockerSeccomp(t))
	e.run("create", "--bundle", b, "c1")
	if !e.executed() {
		t.Fatalf("create: %s", e.stderr.String())
	}
	t.Setenv("FAKE_BUNDLE", b)
	e.shim.Environ = append(e.shim.Environ, "FAKE_BUNDLE="+b)
	return e, b
}

func TestExec(t *testing.T) {
	e, b := fencedBundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"})
	procFile := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(procFile, []byte(`{"args":["psql","-c","select 1"],"cwd":"/","env":["A=1"],"terminal":false,"futureField":7}`), 0o644)
	wrap := func(a ...string) []string { return ocifence.Args(a, false) }
	cases := []struct {
		name string
		args []string
		want []string // nil: the process file case, checked apart
	}{
		{"command", []string{"--root", "/r", "exec", "-t", "--env", "A=1", "-u", "999", "c1", "psql", "-c", "select 1"},
			append([]string{"--root", "/r", "exec", "-t", "--env", "A=1", "-u", "999", "c1"}, wrap("psql", "-c", "select 1")...)},
		{"combined short flags", []string{"exec", "-td", "--cwd=/tmp", "c1", "sh"},
			append([]string{"exec", "-td", "--cwd=/tmp", "c1"}, wrap("sh")...)},
		{"no command", []string{"exec", "c1"}, []string{"exec", "c1"}},
		{"process file", []string{"exec", "--detach", "--process", procFile, "c1"}, nil},
		{"process file attached", []string{"exec", "--process=" + procFile, "--pid-file", "/p", "c1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.execArgv = nil
			e.run(c.args...)
			got := e.execArgv
			if len(got) == 0 {
				t.Fatalf("not executed: %s", e.stderr.String())
			}
			got = got[1:]
			if c.want != nil {
				if !slices.Equal(got, c.want) {
					t.Errorf("executed %q, want %q", got, c.want)
				}
				return
			}
			var newFile string
			for i, a := range got {
				if a == "--process" {
					newFile = got[i+1]
				} else if v, ok := strings.CutPrefix(a, "--process="); ok {
					newFile = v
				}
			}
			if newFile == "" || newFile == procFile || !strings.HasPrefix(newFile, filepath.Join(b, StateDir)) {
				t.Fatalf("process file %q: want a new file in the bundle's %s", newFile, StateDir)
			}
			var p map[string]any
			data, _ := os.ReadFile(newFile)
			json.Unmarshal(data, &p)
			if mustString(p["args"]) != mustString(wrap("psql", "-c", "select 1")) || p["futureField"] != float64(7) || mustString(p["env"]) != `["A=1"]` {
				t.Errorf("wrapped process file = %s", data)
			}
			if orig, _ := os.ReadFile(procFile); !strings.Contains(string(orig), `"args":["psql"`) {
				t.Error("the caller's process file was changed")
			}
		})
	}
	// Unknown flags: the shim cannot tell the container from the
	// command, so it refuses rather than guess.
	e.execArgv = nil
	if code := e.run("exec", "--frobnicate", "x", "c1", "sh"); code != 1 || e.execArgv != nil || !strings.Contains(e.stderr.String(), "unknown flag --frobnicate") {
		t.Errorf("unknown flag: exit %d executed %q stderr %q", code, e.execArgv, e.stderr.String())
	}
}

func TestExecUnfenced(t *testing.T) {
	e := newEnv(t, k73, "")
	b, _ := bundle(t, nil, ocitest.DockerSeccomp(t))
	t.Setenv("FAKE_BUNDLE", b)
	e.shim.Environ = append(e.shim.Environ, "FAKE_BUNDLE="+b)
	args := []string{"exec", "-t", "c1", "sh"}
	e.run(args...)
	if !slices.Equal(e.execArgv[1:], args) {
		t.Errorf("executed %q, want %q unchanged", e.execArgv, args)
	}
}

// TestExecFencedFromOtherConfig: a container created with --config has
// its mark in that file, not in the bundle's config.json that exec reads;
// exec into it is refused rather than run unfenced.
func TestExecFencedFromOtherConfig(t *testing.T) {
	e := newEnv(t, k73, "")
	b, data := bundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"}, ocitest.DockerSeccomp(t))
	if err := os.WriteFile(filepath.Join(b, "alt.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion":"1.2.0","process":{"args":["sh"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("create", "--bundle", b, "--config", "alt.json", "c1")
	if !e.executed() {
		t.Fatalf("create: %s", e.stderr.String())
	}
	t.Setenv("FAKE_BUNDLE", b)
	e.shim.Environ = append(e.shim.Environ, "FAKE_BUNDLE="+b)
	e.execPath = ""
	if code := e.run("exec", "c1", "sh"); code == 0 || e.executed() || !strings.Contains(e.stderr.String(), "refusing exec") {
		t.Errorf("exec: status %d, executed %q; stderr %s: want a refusal", code, e.execArgv, e.stderr.String())
	}
}

func TestExecStateFails(t *testing.T) {
	e := newEnv(t, k73, "")
	fail := filepath.Join(e.dir, "failing")
	os.WriteFile(fail, []byte("#!/bin/sh\necho 'container does not exist' >&2\nexit 1\n"), 0o755)
	e.envVars[RuntimeEnv] = fail
	if code := e.run("exec", "c1", "sh"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), "container does not exist") {
		t.Errorf("exit %d executed %v stderr %q", code, e.executed(), e.stderr.String())
	}
}

// TestMain lets this test binary act as ringfence-runtime for
// TestRealExec.
func TestMain(m *testing.M) {
	if os.Getenv("RINGFENCE_OCISHIM_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

// TestRealExec runs the shim as a process that executes a real program as
// its runtime: the runtime gets the arguments, the environment, standard
// input and output, and its exit status is the shim's.
func TestRealExec(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "myruntime")
	os.WriteFile(rt, []byte("#!/bin/sh\necho \"argv0=$0\"\nfor a in \"$@\"; do echo \"arg=$a\"; done\necho \"env=$RINGFENCE_RUNTIME\"\ncat\nexit 3\n"), 0o755)
	cmd := exec.Command(os.Args[0], "--root", "/run/x", "kill", "c 1", "TERM")
	cmd.Env = append(os.Environ(), "RINGFENCE_OCISHIM_TEST_MAIN=1", RuntimeEnv+"="+rt)
	cmd.Stdin = strings.NewReader("from stdin\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want the runtime's status 3; output %s", err, out)
	}
	want := "argv0=" + rt + "\narg=--root\narg=/run/x\narg=kill\narg=c 1\narg=TERM\nenv=" + rt + "\nfrom stdin\n"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestSeccompCheck: a policy that lets io_uring open AF_VSOCK sockets,
// which Docker's profile denies as socket(2), is refused by default,
// warned about with "warn", and not checked with "off".
func TestSeccompCheck(t *testing.T) {
	vsock := "version: 1\ndefault: deny\nrules:\n  - name: sockets\n    ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_UNIX, AF_VSOCK]\n"
	cases := []struct {
		cfg     string
		created bool
		stderr  string
	}{
		{"", false, `ringfence-runtime create: not starting the container: the policy lets io_uring do what the container's seccomp profile forbids`},
		{"seccompCheck: refuse\n", false, "socket"},
		{"seccompCheck: warn\n", true, "ringfence-runtime: warning: the policy lets io_uring do what"},
		{"seccompCheck: off\n", true, ""},
	}
	for _, c := range cases {
		e := newEnv(t, k73, c.cfg)
		b, orig := bundle(t, map[string]string{ocifence.PolicyKey: vsock}, ocitest.DockerSeccomp(t))
		code := e.run("create", "--bundle", b, "c1")
		now, _ := os.ReadFile(filepath.Join(b, "config.json"))
		if c.created != e.executed() || c.created == bytes.Equal(now, orig) || !c.created && code != 1 {
			t.Errorf("%q: exit %d, executed %v, rewritten %v; want created=%v", c.cfg, code, e.executed(), !bytes.Equal(now, orig), c.created)
		}
		if c.stderr == "" && e.stderr.Len() > 0 || !strings.Contains(e.stderr.String(), c.stderr) {
			t.Errorf("%q: stderr %q, want %q", c.cfg, e.stderr.String(), c.stderr)
		}
	}
}

// noBases refuses every base: a policy it parses stands alone.
type noBases struct{}

func (noBases) Load(ref, from string) ([]byte, string, error) {
	return nil, "", fmt.Errorf("no bases: the policy file must stand alone")
}

// oversize makes path a file of readlimit.Max+1 bytes (sparse, so cheap),
// keeping what it held at its start.
func oversize(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(readlimit.Max + 1); err != nil {
		t.Fatal(err)
	}
}

// TestOversizedInputs: runtime.yaml, a bundle's config.json (at create
// and at exec) and the process file of exec are read with a limit; a
// larger file fails with an error that names it and the limit, and the
// real runtime is not run.
func TestOversizedInputs(t *testing.T) {
	wantLimit := fmt.Sprintf("more than %d MiB", readlimit.Max>>20)
	t.Run("runtime.yaml", func(t *testing.T) {
		e := newEnv(t, k73, "runtime: runc\n")
		oversize(t, e.shim.ConfigPath)
		b, _ := bundle(t, nil, nil)
		if code := e.run("create", "--bundle", b, "c1"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), e.shim.ConfigPath+": input too large: "+wantLimit) {
			t.Errorf("exit %d executed %v stderr %q: want a refusal naming runtime.yaml and the limit", code, e.executed(), e.stderr.String())
		}
	})
	t.Run("config.json at create", func(t *testing.T) {
		e := newEnv(t, k73, "")
		b, _ := bundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"}, nil)
		oversize(t, filepath.Join(b, "config.json"))
		if code := e.run("create", "--bundle", b, "c1"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), filepath.Join(b, "config.json")+": input too large: "+wantLimit) {
			t.Errorf("exit %d executed %v stderr %q: want a refusal naming config.json and the limit", code, e.executed(), e.stderr.String())
		}
	})
	t.Run("config.json at exec", func(t *testing.T) {
		e, b := fencedBundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"})
		oversize(t, filepath.Join(b, "config.json"))
		e.execPath = ""
		if code := e.run("exec", "c1", "sh"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), filepath.Join(b, "config.json")+": input too large: "+wantLimit) {
			t.Errorf("exit %d executed %v stderr %q: want a refusal naming config.json and the limit", code, e.executed(), e.stderr.String())
		}
	})
	t.Run("process file at exec", func(t *testing.T) {
		e, _ := fencedBundle(t, map[string]string{ocifence.PolicyKey: "profile:storage"})
		proc := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(proc, []byte(`{"args":["sh"]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		oversize(t, proc)
		e.execPath = ""
		if code := e.run("exec", "--process", proc, "c1"); code != 1 || e.executed() || !strings.Contains(e.stderr.String(), proc+": input too large: "+wantLimit) {
			t.Errorf("exit %d executed %v stderr %q: want a refusal naming the process file and the limit", code, e.executed(), e.stderr.String())
		}
	})
}

// TestSandboxClaimNotTrusted: a container whose annotations merely say it
// is a pod sandbox (which a pod's author can write where the runtime
// passes pod annotations through, and anyone can with Docker or Podman)
// gets the default policy like any other, with a warning; only a
// container whose sandbox ID is its own ID is a sandbox.
func TestSandboxClaimNotTrusted(t *testing.T) {
	const podID = "0123abcd"
	cases := []struct {
		name string
		ann  map[string]string
	}{
		{"containerd type only", map[string]string{"io.kubernetes.cri.container-type": "sandbox"}},
		{"containerd type, the pod's sandbox ID", map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": podID}},
		// containerd overwrites its own keys after the pod's, but not
		// CRI-O's: with pod_annotations = ["*"] these reach the runtime.
		{"CRI-O keys under containerd", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": podID, "io.kubernetes.cri-o.ContainerType": "sandbox", "io.kubernetes.cri-o.SandboxID": podID}},
		{"CRI-O type, no ID", map[string]string{"io.kubernetes.cri-o.ContainerType": "sandbox"}},
		{"mixed keys", map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri-o.SandboxID": "c1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, k73, "policy: profile:deny-all\n")
			b, _ := bundle(t, c.ann, ocitest.DockerSeccomp(t))
			if code := e.run("create", "--bundle", b, "c1"); code != 0 || !e.executed() {
				t.Fatalf("exit %d: %s", code, e.stderr.String())
			}
			s := readSpec(t, filepath.Join(b, "config.json"))
			if !ocifence.IsWrapped(s.Process.Args) || s.Annotations[ocifence.FencedKey] != "true" {
				t.Errorf("args %q: a container that only claims to be a sandbox escaped the default policy", s.Process.Args)
			}
			if !strings.Contains(e.stderr.String(), "marked as a pod sandbox but its sandbox ID is not its own") {
				t.Errorf("stderr %q: want a warning", e.stderr.String())
			}
		})
	}
}

// TestNoneMeansNoAnnotation: "none", at the pod's key or the container's,
// names no policy: the container gets runtime.yaml's default policy as if
// it had no annotation, so whoever writes annotations cannot remove the
// administrator's default (and without a default it passes through, as
// TestCreatePassesThrough shows). Nor can the if-supported annotation
// start a container without the default policy; only runtime.yaml can.
func TestNoneMeansNoAnnotation(t *testing.T) {
	const cfg = "policy: profile:deny-all\n"
	denyAll, _ := profiles.Get("deny-all")
	cases := []struct {
		name string
		ann  map[string]string
	}{
		{"no annotation", nil},
		{"pod none", map[string]string{ocifence.PolicyKey: "none"}},
		{"container none", map[string]string{ocifence.PolicyKey: "profile:storage", "io.kubernetes.cri.container-name": "db", ocifence.ContainerPolicyPrefix + "db": "none"}},
		{"both none", map[string]string{ocifence.PolicyKey: " none ", "io.kubernetes.cri.container-name": "db", ocifence.ContainerPolicyPrefix + "db": "none"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, k73, cfg)
			b, _ := bundle(t, c.ann, ocitest.DockerSeccomp(t))
			if code := e.run("create", "--bundle", b, "c1"); code != 0 || !e.executed() {
				t.Fatalf("exit %d: %s", code, e.stderr.String())
			}
			s := readSpec(t, filepath.Join(b, "config.json"))
			pol, err := os.ReadFile(filepath.Join(b, StateDir, "policy.yaml"))
			if !ocifence.IsWrapped(s.Process.Args) || err != nil || !bytes.Equal(pol, denyAll) {
				t.Errorf("args %q, policy %q (%v): want the default policy deny-all", s.Process.Args, pol, err)
			}
		})
	}
	for _, ann := range []map[string]string{
		{ocifence.IfSupportedKey: "true"},
		{ocifence.PolicyKey: "none", ocifence.IfSupportedKey: "true"},
	} {
		e := newEnv(t, k619, cfg)
		b, orig := bundle(t, ann, ocitest.DockerSeccomp(t))
		code := e.run("create", "--bundle", b, "c1")
		now, _ := os.ReadFile(filepath.Join(b, "config.json"))
		if code != 1 || e.executed() || !bytes.Equal(now, orig) || !strings.Contains(e.stderr.String(), "this kernel cannot fence") {
			t.Errorf("%v on 6.19: exit %d executed %v stderr %q: the annotation must not start a container without the default policy", ann, code, e.executed(), e.stderr.String())
		}
	}
	// The administrator's ifSupported does.
	e := newEnv(t, k619, cfg+"ifSupported: true\n")
	b, _ := bundle(t, map[string]string{ocifence.PolicyKey: "none"}, ocitest.DockerSeccomp(t))
	if code := e.run("create", "--bundle", b, "c1"); code != 0 || !e.executed() || !strings.Contains(e.stderr.String(), "WITHOUT its io_uring policy") {
		t.Errorf("ifSupported: true on 6.19: exit %d stderr %q", code, e.stderr.String())
	}
}

// TestFloor: runtime.yaml's floor holds every container whatever its
// annotations say: the annotation's policy (or the default) runs inside
// it, one "ringfence run" in the other, so a permissive inline policy
// gains nothing. exec runs under both too, a second create does not wrap
// twice, and only runtime.yaml's ifSupported starts such a container
// unfenced.
func TestFloor(t *testing.T) {
	allowAll := "version: 1\ndefault: allow\n"
	_, storage, err := ringfence.ResolvePolicyValue("profile:storage", "test", "/")
	if err != nil {
		t.Fatal(err)
	}
	denyAll, _ := profiles.Get("deny-all")
	prog := []string{"postgres", "-c", "io_method=io_uring"}
	cases := []struct {
		name   string
		cfg    string
		ann    map[string]string
		floor  []byte
		policy []byte // nil: no inner policy
	}{
		{"permissive annotation", "floor: profile:storage\n", map[string]string{ocifence.PolicyKey: allowAll}, storage, []byte(allowAll)},
		{"no annotation", "floor: profile:storage\n", nil, storage, nil},
		{"none, with a default", "floor: profile:storage\npolicy: profile:deny-all\n", map[string]string{ocifence.PolicyKey: "none"}, storage, denyAll},
		{"annotation over the default", "floor: profile:storage\npolicy: profile:deny-all\n", map[string]string{ocifence.PolicyKey: allowAll}, storage, []byte(allowAll)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, k73, c.cfg)
			b, _ := bundle(t, c.ann, ocitest.DockerSeccomp(t))
			if code := e.run("create", "--bundle", b, "c1"); code != 0 || !e.executed() {
				t.Fatalf("exit %d: %s", code, e.stderr.String())
			}
			s := readSpec(t, filepath.Join(b, "config.json"))
			state := filepath.Join(b, StateDir)
			wantMounts := []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, ocifence.Mount(e.shim.Self, ocifence.BinaryPath), ocifence.Mount(filepath.Join(state, "floor.yaml"), ocifence.FloorPath)}
			wantArgs := ocifence.Wrap(prog, false, ocifence.FloorPath)
			if c.policy != nil {
				wantMounts = append(wantMounts, ocifence.Mount(filepath.Join(state, "policy.yaml"), ocifence.PolicyPath))
				wantArgs = ocifence.Wrap(prog, false, ocifence.FloorPath, ocifence.PolicyPath)
			}
			if !slices.Equal(s.Process.Args, wantArgs) {
				t.Errorf("args %q, want %q", s.Process.Args, wantArgs)
			}
			if g, w := mustString(s.Mounts), mustString(wantMounts); g != w {
				t.Errorf("mounts %s, want %s", g, w)
			}
			if got, err := os.ReadFile(filepath.Join(state, "floor.yaml")); err != nil || !bytes.Equal(got, c.floor) {
				t.Errorf("floor.yaml %q (%v), want the storage profile flattened", got, err)
			}
			if got, err := os.ReadFile(filepath.Join(state, "policy.yaml")); c.policy != nil && (err != nil || !bytes.Equal(got, c.policy)) || c.policy == nil && err == nil {
				t.Errorf("policy.yaml %q (%v), want %q", got, err, c.policy)
			}
			// A second create leaves it as it is.
			e.execPath = ""
			if e.run("create", "--bundle", b, "c1"); !e.executed() || !slices.Equal(readSpec(t, filepath.Join(b, "config.json")).Process.Args, wantArgs) {
				t.Errorf("second create: %s", e.stderr.String())
			}
			// exec runs under the same wrappers.
			t.Setenv("FAKE_BUNDLE", b)
			e.shim.Environ = append(e.shim.Environ, "FAKE_BUNDLE="+b)
			e.execArgv = nil
			e.run("exec", "c1", "psql")
			wrappers, _, _ := ocifence.Unwrap(wantArgs)
			if want := append([]string{e.real, "exec", "c1"}, slices.Concat(wrappers, []string{"psql"})...); !slices.Equal(e.execArgv, want) {
				t.Errorf("exec: %q, want %q (%s)", e.execArgv, want, e.stderr.String())
			}
		})
	}
	// The if-supported annotation does not start a container without the
	// floor; runtime.yaml's ifSupported does.
	for _, c := range []struct {
		cfg     string
		created bool
	}{
		{"floor: profile:storage\n", false},
		{"floor: profile:storage\nifSupported: true\n", true},
	} {
		e := newEnv(t, k619, c.cfg)
		b, _ := bundle(t, map[string]string{ocifence.PolicyKey: allowAll, ocifence.IfSupportedKey: "true"}, ocitest.DockerSeccomp(t))
		if code := e.run("create", "--bundle", b, "c1"); (code == 0) != c.created || e.executed() != c.created {
			t.Errorf("%q on 6.19: exit %d, executed %v; want created %v (%s)", c.cfg, code, e.executed(), c.created, e.stderr.String())
		}
	}
	e := newEnv(t, k73, "floor: profile:nope\n")
	b, _ := bundle(t, nil, nil)
	if code := e.run("create", "--bundle", b, "c1"); code != 1 || !strings.Contains(e.stderr.String(), "runtime.yaml: floor: unknown profile") {
		t.Errorf("bad floor: exit %d, stderr %q", code, e.stderr.String())
	}
}

// TestFloorSeccompCheck: a stacked container can do through io_uring
// only what both policies allow, so a bypass in one of them alone is no
// bypass; in both, it is refused.
func TestFloorSeccompCheck(t *testing.T) {
	vsock := "version: 1\ndefault: deny\nrules:\n  - name: sockets\n    ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_UNIX, AF_VSOCK]\n"
	for _, c := range []struct {
		floor, annotation string
		created           bool
	}{
		{"profile:storage", vsock, true},
		{"policy.yaml", "profile:storage", true},
		{"policy.yaml", vsock, false},
	} {
		e := newEnv(t, k73, "floor: "+c.floor+"\n")
		if err := os.WriteFile(filepath.Join(e.dir, "policy.yaml"), []byte(vsock), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ := bundle(t, map[string]string{ocifence.PolicyKey: c.annotation}, ocitest.DockerSeccomp(t))
		code := e.run("create", "--bundle", b, "c1")
		if e.executed() != c.created || !c.created && (code != 1 || !strings.Contains(e.stderr.String(), "seccomp profile forbids")) {
			t.Errorf("floor %s, annotation %.20q: exit %d executed %v stderr %q; want created %v", c.floor, c.annotation, code, e.executed(), e.stderr.String(), c.created)
		}
	}
}
