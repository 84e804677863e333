package ocishim

import (
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/ocifence"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		in   string
		want Config
		err  string
	}{
		{"", Config{}, ""},
		{"runtime: crun\nbinary: /usr/bin/ringfence\npolicy: profile:default\nfloor: profile:storage\nifSupported: true\nseccompCheck: warn\n", Config{Runtime: "crun", Binary: "/usr/bin/ringfence", Policy: "profile:default", Floor: "profile:storage", IfSupported: true, SeccompCheck: "warn"}, ""},
		{"floor: none\n", Config{}, `r.yaml: floor is "none": leave it out`},
		{"flor: x\n", Config{}, `r.yaml:1: unknown key "flor" (known: runtime, binary, policy, floor,`},
		{"runtime: crun\nrutime: x\n", Config{}, `r.yaml:2: unknown key "rutime"`},
		{"seccompCheck: maybe\n", Config{}, `r.yaml: seccompCheck is "maybe"`},
		{"ifSupported: sometimes\n", Config{}, "r.yaml:"},
		{"- a\n", Config{}, "r.yaml:"},
		{"policy: none\n", Config{}, `r.yaml: policy is "none": leave it out`},
	}
	for _, c := range cases {
		got, err := ParseConfig([]byte(c.in), "r.yaml")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestSplitGlobal(t *testing.T) {
	cases := []struct {
		in        []string
		global    []string
		log, fmt_ string
		err       string
	}{
		{[]string{"--root", "/r", "--log=/l", "--log-format", "json", "--systemd-cgroup", "create", "x"}, []string{"--root", "/r", "--log=/l", "--log-format", "json", "--systemd-cgroup"}, "/l", "json", ""},
		{[]string{"-log", "/l", "state", "c"}, []string{"-log", "/l"}, "/l", "", ""},
		{[]string{"--debug", "--cgroup-manager", "systemd", "run"}, []string{"--debug", "--cgroup-manager", "systemd"}, "", "", ""},
		{[]string{"--root"}, nil, "", "", "needs a value"},
		{[]string{"kill", "--root", "x"}, []string{}, "", "", ""},
	}
	for _, c := range cases {
		g, rest, err := splitGlobal(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v", c.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(g.args, c.global) || g.log != c.log || g.logFormat != c.fmt_ || !slices.Equal(append(slices.Clone(g.args), rest...), c.in) {
			t.Errorf("%q: globals %q log %q format %q rest %q err %v", c.in, g.args, g.log, g.logFormat, rest, err)
		}
	}
}

func FuzzSplitGlobal(f *testing.F) {
	f.Add("--root\x00/r\x00create\x00--bundle\x00/b\x00id")
	f.Add("exec\x00-td\x00--process=/p\x00c1\x00sh")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		g, rest, err := splitGlobal(args)
		if err == nil && !slices.Equal(append(slices.Clone(g.args), rest...), args) {
			t.Fatalf("globals %q + rest %q != %q", g.args, rest, args)
		}
		for _, f := range []cmdFlags{createFlags, execFlags} {
			p, err := f.parse(args, false)
			if err != nil {
				continue
			}
			for _, i := range p.pos {
				if i < 0 || i >= len(args) {
					t.Fatalf("positional index %d out of range", i)
				}
			}
			for n, i := range p.index {
				if i < 0 || i >= len(args) {
					t.Fatalf("flag %s index %d out of range", n, i)
				}
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("runtime: crun\npolicy: profile:default\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseConfig(data, "f.yaml")
	})
}

func FuzzSpec(f *testing.F) {
	f.Add([]byte(`{"process":{"args":["sh"]},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}},"annotations":{"a":"b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil || len(c.args) == 0 {
			return
		}
		if err := c.fence(ocifence.Args(c.args, false), ocifence.Mounts("/b", "/p")); err != nil {
			return
		}
		out, err := c.marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseConfig(out)
		if err != nil {
			t.Fatalf("rewritten config does not parse: %v", err)
		}
		if !slices.Equal(again.args, c.args) || again.annotations["org.ringfence.fenced"] != "true" {
			t.Fatalf("rewritten config lost its changes")
		}
	})
}
