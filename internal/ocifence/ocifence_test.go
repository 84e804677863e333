package ocifence_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/ocifence"
	"github.com/ringfence/ringfence/internal/ocitest"
	"github.com/ringfence/ringfence/policy"
)

func TestChoose(t *testing.T) {
	cases := []struct {
		name string
		ann  map[string]string
		ctr  string
		ok   bool
		key  string
		ifs  bool
		err  string
	}{
		{"nothing", nil, "db", false, "", false, ""},
		{"pod policy", map[string]string{ocifence.PolicyKey: "profile:storage"}, "db", true, ocifence.PolicyKey, false, ""},
		{"container wins", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.ContainerPolicyPrefix + "db": "profile:deny-all"}, "db", true, ocifence.ContainerPolicyPrefix + "db", false, ""},
		{"other container's key", map[string]string{ocifence.ContainerPolicyPrefix + "web": "profile:deny-all"}, "db", false, "", false, ""},
		{"opt out", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.ContainerPolicyPrefix + "db": " none "}, "db", false, "", false, ""},
		// "none" means the same at the pod's key: no policy from the
		// annotations (never a policy file named "none").
		{"pod none", map[string]string{ocifence.PolicyKey: "none"}, "db", false, "", false, ""},
		{"pod none, container policy", map[string]string{ocifence.PolicyKey: "none", ocifence.ContainerPolicyPrefix + "db": "profile:storage"}, "db", true, ocifence.ContainerPolicyPrefix + "db", false, ""},
		{"pod none, no name", map[string]string{ocifence.PolicyKey: "none\n"}, "", false, "", false, ""},
		{"no name", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.ContainerPolicyPrefix: "profile:deny-all"}, "", true, ocifence.PolicyKey, false, ""},
		{"if-supported", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.IfSupportedKey: "true"}, "", true, ocifence.PolicyKey, true, ""},
		{"if-supported false", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.IfSupportedKey: "false"}, "", true, ocifence.PolicyKey, false, ""},
		{"bad if-supported", map[string]string{ocifence.PolicyKey: "profile:storage", ocifence.IfSupportedKey: "yes"}, "", false, "", false, `org.ringfence.if-supported is "yes"`},
	}
	for _, c := range cases {
		got, ok, err := ocifence.Choose(c.ann, c.ctr)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || ok != c.ok || got.Key != c.key || got.IfSupported != c.ifs {
			t.Errorf("%s: Choose = %+v, %v, %v; want ok=%v key=%q ifSupported=%v", c.name, got, ok, err, c.ok, c.key, c.ifs)
		}
		if ok && got.Value != c.ann[c.key] {
			t.Errorf("%s: value %q, want %q", c.name, got.Value, c.ann[c.key])
		}
	}
}

func TestArgs(t *testing.T) {
	cases := []struct {
		args []string
		ifs  bool
		want []string
	}{
		{[]string{"postgres", "-c", "io_method=io_uring"}, false, []string{ocifence.BinaryPath, "run", "--policy", ocifence.PolicyPath, "--", "postgres", "-c", "io_method=io_uring"}},
		{[]string{"--", "-x"}, true, []string{ocifence.BinaryPath, "run", "--policy", ocifence.PolicyPath, "--if-supported", "--", "--", "-x"}},
	}
	for _, c := range cases {
		got := ocifence.Args(c.args, c.ifs)
		if !slices.Equal(got, c.want) {
			t.Errorf("Args(%q, %v) = %q, want %q", c.args, c.ifs, got, c.want)
		}
		if !ocifence.IsWrapped(got) {
			t.Errorf("IsWrapped(%q) = false", got)
		}
		if ocifence.IsWrapped(c.args) {
			t.Errorf("IsWrapped(%q) = true", c.args)
		}
	}
}

func TestMounts(t *testing.T) {
	m := ocifence.Mounts("/usr/bin/ringfence", "/run/x/policy.yaml")
	if len(m) != 2 || m[0].Destination != ocifence.BinaryPath || m[0].Source != "/usr/bin/ringfence" || m[1].Destination != ocifence.PolicyPath || m[1].Source != "/run/x/policy.yaml" {
		t.Fatalf("Mounts = %+v", m)
	}
	for _, x := range m {
		if x.Type != "bind" || !slices.Contains(x.Options, "ro") || !slices.Contains(x.Options, "bind") || slices.Contains(x.Options, "noexec") {
			t.Errorf("mount %s: type %q options %q; want a read-only bind mount that can be executed", x.Destination, x.Type, x.Options)
		}
	}
}

func errno(n uint) *uint { return &n }

// rulesFor returns, for each syscall name other than the io_uring ones,
// the rules that mention it (action, errno, args), in order.
func rulesFor(s *specs.LinuxSeccomp) map[string][]string {
	m := map[string][]string{}
	for _, r := range s.Syscalls {
		for _, n := range r.Names {
			if slices.Contains(ocifence.IOUringSyscalls(), n) {
				continue
			}
			m[n] = append(m[n], fmt.Sprintf("%s %s %+v", r.Action, errnoOf(r.ErrnoRet), r.Args))
		}
	}
	return m
}

func TestOpenSeccomp(t *testing.T) {
	moby := ocitest.DockerSeccomp(t)
	if moby.DefaultAction != specs.ActErrno || moby.DefaultErrnoRet == nil || *moby.DefaultErrnoRet != 1 {
		t.Fatalf("moby's default profile: default %s errno %v; the test expects ERRNO(EPERM)", moby.DefaultAction, moby.DefaultErrnoRet)
	}
	for _, r := range moby.Syscalls {
		for _, n := range r.Names {
			if strings.HasPrefix(n, "io_uring") {
				t.Fatalf("moby's default profile names %s; the test expects the default action to block io_uring", n)
			}
		}
	}
	podmanLike := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(38),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"io_uring_enter", "io_uring_register", "io_uring_setup", "bpf"}, Action: specs.ActErrno, ErrnoRet: errno(38)},
		},
	}
	cases := []struct {
		name    string
		in      *specs.LinuxSeccomp
		changes int
	}{
		{"moby default (EPERM by default action)", moby, 3},
		{"explicit ENOSYS rule shared with bpf", podmanLike, 6},
		{"default allow with a deny rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"io_uring_setup", "ptrace"}, Action: specs.ActErrno, ErrnoRet: errno(1)},
			{Names: []string{"io_uring_enter"}, Action: specs.ActKill},
		}}, 2},
		{"already allowed", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"io_uring_setup", "io_uring_enter", "io_uring_register", "read"}, Action: specs.ActAllow},
		}}, 0},
		{"allowed only with conditions", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"io_uring_setup"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0, Op: specs.OpEqualTo}}},
			{Names: []string{"io_uring_enter", "io_uring_register"}, Action: specs.ActAllow},
		}}, 2},
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{
			{Names: []string{"io_uring_setup", "mount"}, Action: specs.ActNotify},
		}}, 1},
	}
	for _, c := range cases {
		before := rulesFor(c.in)
		inCopy := fmt.Sprintf("%+v", *c.in)
		out, changes := ocifence.OpenSeccomp(c.in)
		if len(changes) != c.changes {
			t.Errorf("%s: %d changes %q, want %d", c.name, len(changes), changes, c.changes)
		}
		if fmt.Sprintf("%+v", *c.in) != inCopy {
			t.Errorf("%s: the input profile was modified", c.name)
		}
		// Everything but the three system calls is as before.
		if got := rulesFor(out); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Errorf("%s: other rules changed:\nbefore %v\nafter  %v", c.name, before, got)
		}
		if out.DefaultAction != c.in.DefaultAction || out.DefaultErrnoRet != c.in.DefaultErrnoRet || !slices.Equal(out.Architectures, c.in.Architectures) || out.ListenerPath != c.in.ListenerPath {
			t.Errorf("%s: default, architectures or listener changed", c.name)
		}
		// Each io_uring system call is allowed unconditionally: by
		// exactly one unconditional allow rule, or by the default action
		// with no rule at all.
		for _, n := range ocifence.IOUringSyscalls() {
			var rules []specs.LinuxSyscall
			for _, r := range out.Syscalls {
				if slices.Contains(r.Names, n) {
					rules = append(rules, r)
				}
			}
			switch {
			case out.DefaultAction == specs.ActAllow && len(rules) == 0:
			case len(rules) == 1 && rules[0].Action == specs.ActAllow && len(rules[0].Args) == 0:
			default:
				t.Errorf("%s: %s has rules %+v under default %s; want it allowed unconditionally", c.name, n, rules, out.DefaultAction)
			}
		}
		// Opening is idempotent.
		if _, again := ocifence.OpenSeccomp(out); len(again) != 0 {
			t.Errorf("%s: opening twice changes %q", c.name, again)
		}
	}
	if out, ch := ocifence.OpenSeccomp(nil); out != nil || ch != nil {
		t.Errorf("OpenSeccomp(nil) = %v, %v", out, ch)
	}
}

func TestCheck(t *testing.T) {
	storage, err := ringfence.Profile("storage")
	if err != nil {
		t.Fatal(err)
	}
	connect, err := ringfence.ParsePolicy([]byte("version: 1\ndefault: deny\nrules:\n  - ops: [CONNECT]\n    action: allow\n    when:\n      connect.family: AF_UNIX\n"), "connect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		k      ocitest.Kernel
		p      *policy.Policy
		cannot bool
		err    string
	}{
		{"7.3", ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 3}}, storage, false, ""},
		{"7.1", ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 1}}, storage, false, ""},
		{"no filters", ocitest.Kernel{Unsupported: errors.New("Linux 6.19 has no io_uring BPF filters"), Release: abi.Version{Major: 6, Minor: 19}}, storage, true, "6.19 has no io_uring BPF filters"},
		{"7.0 drops at exec", ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 0}}, storage, true, "execve"},
		{"connect on 7.1", ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 1}}, connect, false, "does not compile for Linux 7.1"},
		{"connect on 7.2", ocitest.Kernel{Release: abi.Version{Major: 7, Minor: 2}}, connect, false, ""},
	}
	for _, c := range cases {
		err := ocifence.Check(c.k, c.p)
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || errors.Is(err, ocifence.ErrCannotFence) != c.cannot {
			t.Errorf("%s: Check = %v; want an error with %q, ErrCannotFence %v", c.name, err, c.err, c.cannot)
		}
	}
}

// vsockPolicy allows AF_VSOCK sockets, which both real profiles deny.
const vsockPolicy = "version: 1\ndefault: deny\nrules:\n  - name: sockets\n    ops: [SOCKET]\n    action: allow\n    when:\n      socket.family: [AF_UNIX, AF_VSOCK]\n"

func TestBypasses(t *testing.T) {
	vsock, err := ringfence.ParsePolicy([]byte(vsockPolicy), "vsock.yaml")
	if err != nil {
		t.Fatal(err)
	}
	storage, _ := ringfence.Profile("storage")
	k := abi.Version{Major: 7, Minor: 3}
	cases := []struct {
		name    string
		s       *specs.LinuxSeccomp
		p       *policy.Policy
		bypass  bool
		message string
	}{
		{"storage under Docker's profile", ocitest.DockerSeccomp(t), storage, false, ""},
		{"storage under Podman's profile", ocitest.PodmanSeccomp(t), storage, false, ""},
		{"AF_VSOCK under Docker's profile", ocitest.DockerSeccomp(t), vsock, true, "socket"},
		{"AF_VSOCK under Podman's profile", ocitest.PodmanSeccomp(t), vsock, true, "socket"},
		{"unconfined", nil, vsock, false, ""},
	}
	for _, c := range cases {
		bs, err := ocifence.Bypasses(c.s, c.p, k)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (len(bs) > 0) != c.bypass {
			t.Errorf("%s: %d bypasses %v, want bypass=%v", c.name, len(bs), bs, c.bypass)
			continue
		}
		if c.bypass {
			msg := ocifence.BypassError(bs).Error()
			if !strings.Contains(msg, c.message) || !strings.Contains(msg, `rule 1 ("sockets")`) {
				t.Errorf("%s: message %q", c.name, msg)
			}
		}
	}
}

func TestParseSeccompCheck(t *testing.T) {
	for in, want := range map[string]ocifence.SeccompCheck{"": ocifence.SeccompRefuse, "refuse": ocifence.SeccompRefuse, "warn": ocifence.SeccompWarn, "off": ocifence.SeccompOff} {
		if got, err := ocifence.ParseSeccompCheck(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ocifence.ParseSeccompCheck("no"); err == nil {
		t.Error("accepted no")
	}
}

// TestOpenPodmanSeccomp: Podman's real profile answers io_uring with
// ENOSYS by its default action; opened, exactly the three are allowed.
func TestOpenPodmanSeccomp(t *testing.T) {
	s := ocitest.PodmanSeccomp(t)
	if s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 38 {
		t.Fatalf("Podman's profile: default errno %v, the test expects ENOSYS", s.DefaultErrnoRet)
	}
	before := rulesFor(s)
	out, changes := ocifence.OpenSeccomp(s)
	if len(changes) != 3 || fmt.Sprint(rulesFor(out)) != fmt.Sprint(before) || *out.DefaultErrnoRet != 38 {
		t.Errorf("changes %q; other rules kept %v", changes, fmt.Sprint(rulesFor(out)) == fmt.Sprint(before))
	}
}

func errnoOf(e *uint) string {
	if e == nil {
		return "-"
	}
	return fmt.Sprint(*e)
}

// TestWrapUnwrap: Wrap nests one "ringfence run" per policy, outermost
// first, and Unwrap takes exactly those wrappers off again, never a
// wrapper-looking start of the program's own arguments that names
// another file.
func TestWrapUnwrap(t *testing.T) {
	run := func(p string, ifs bool) []string {
		w := []string{ocifence.BinaryPath, "run", "--policy", p}
		if ifs {
			w = append(w, "--if-supported")
		}
		return append(w, "--")
	}
	prog := []string{"postgres", "--", "-c"}
	stacked := ocifence.Wrap(prog, true, ocifence.FloorPath, ocifence.PolicyPath)
	if want := slices.Concat(run(ocifence.FloorPath, true), run(ocifence.PolicyPath, true), prog); !slices.Equal(stacked, want) {
		t.Errorf("Wrap = %q, want %q", stacked, want)
	}
	cases := []struct {
		name     string
		args     []string
		wrappers int // how many leading words are wrappers
	}{
		{"one", ocifence.Args(prog, false), 5},
		{"one if-supported", ocifence.Args(prog, true), 6},
		{"floor and policy", stacked, 12},
		{"floor only", ocifence.Wrap(prog, false, ocifence.FloorPath), 5},
		{"program", prog, 0},
		{"another policy file", slices.Concat(run("/tmp/mine.yaml", false), prog), 0},
		{"after a wrapper, another file", slices.Concat(run(ocifence.PolicyPath, false), run("/tmp/mine.yaml", false), prog), 5},
		{"no --", []string{ocifence.BinaryPath, "run", "--policy", ocifence.PolicyPath, "x"}, 0},
		{"short", []string{ocifence.BinaryPath, "run", "--policy", ocifence.PolicyPath}, 0},
		{"empty", nil, 0},
	}
	for _, c := range cases {
		w, p, ok := ocifence.Unwrap(c.args)
		if len(w) != c.wrappers || ok != (c.wrappers > 0) || !slices.Equal(slices.Concat(w, p), c.args) {
			t.Errorf("%s: Unwrap(%q) = %q, %q, %v; want %d wrapper words", c.name, c.args, w, p, ok, c.wrappers)
		}
	}
}

func FuzzUnwrap(f *testing.F) {
	f.Add("postgres\x00-c\x00io_method=io_uring", true, true)
	f.Add(ocifence.BinaryPath+"\x00run\x00--policy\x00"+ocifence.PolicyPath+"\x00--", false, true)
	f.Fuzz(func(t *testing.T, joined string, ifs, floor bool) {
		prog := strings.Split(joined, "\x00")
		w0, _, _ := ocifence.Unwrap(prog)
		policies := []string{ocifence.PolicyPath}
		if floor {
			policies = []string{ocifence.FloorPath, ocifence.PolicyPath}
		}
		w, p, ok := ocifence.Unwrap(ocifence.Wrap(prog, ifs, policies...))
		// The program's own leading wrappers, if any, are unwrapped too.
		if !ok || !slices.Equal(slices.Concat(w, p), ocifence.Wrap(prog, ifs, policies...)) || !slices.Equal(p, prog[len(w0):]) {
			t.Errorf("Unwrap(Wrap(%q)) = %q, %q, %v", prog, w, p, ok)
		}
	})
}
