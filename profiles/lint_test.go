package profiles_test

import (
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// TestProfilesParseAndLint: every profile is a valid policy, the linter
// finds no errors in it (warnings are shown), it runs on Linux 7.0 (no
// CONNECT conditions), and it keeps the promises its comments make.
func TestProfilesParseAndLint(t *testing.T) {
	for _, name := range profiles.Names() {
		data, err := profiles.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(data, name+".yaml")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, d := range p.Lint() {
			if d.Severity != policy.Warning {
				t.Errorf("%s: lint: %v", name, d)
			} else {
				t.Logf("%s: lint: %v", name, d)
			}
		}
		if need := p.Needs(); need != abi.FilterSince() {
			t.Errorf("%s needs Linux %v; built-in profiles must work on %v", name, need, abi.FilterSince())
		}
		if p.Default != policy.Deny {
			t.Errorf("%s: default is %v; built-in profiles deny what they do not name", name, p.Default)
		}
	}
}

// TestProfilesDecide checks what each profile promises in its comments.
func TestProfilesDecide(t *testing.T) {
	sock := func(fam, typ uint32) policy.Request {
		return policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: typ}}
	}
	open := func(flags uint64) policy.Request {
		return policy.Request{Op: abi.OpOpenat, Open: abi.OpenData{Flags: flags | 0o100000}}
	}
	const (
		afUnix, afInet, afInet6, afNetlink, afPacket = 1, 2, 10, 16, 17
		stream, dgram, raw, nonblock                 = 1, 2, 3, 0o4000
	)
	op := func(o abi.Opcode) policy.Request { return policy.Request{Op: o} }
	proto := func(fam, typ, pr uint32) policy.Request {
		return policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: fam, Type: typ, Protocol: pr}}
	}
	const tcp, udp, sctp, l2tp, mptcp, udplite = 6, 17, 132, 115, 262, 136
	odir := uint64(0o200000)
	cases := []struct {
		profile string
		req     policy.Request
		allow   bool
	}{
		{"default", op(abi.OpNop), true},
		{"default", op(abi.OpRead), true},
		{"default", op(abi.OpUringCmd), false},
		{"default", op(abi.OpUringCmd128), false},
		{"default", op(abi.OpRecvZc), false},
		{"default", sock(afInet, stream), true},
		{"default", sock(afInet6, dgram|nonblock), true},
		{"default", sock(afUnix, stream), true},
		{"default", sock(afInet, raw), false},
		{"default", sock(afPacket, raw), false},
		{"default", sock(afNetlink, dgram), false},
		{"default", open(0o101), true},
		{"default", proto(afInet, stream, tcp), true},
		{"default", proto(afInet6, stream, mptcp), true},
		{"default", proto(afInet, dgram, udp), true},
		{"default", proto(afInet, stream, sctp), false},
		{"default", proto(afInet6, 5, sctp), false},
		{"default", proto(afInet, dgram, l2tp), false},
		{"default", proto(afInet, dgram, udplite), false},
		{"network-server", proto(afInet, stream, sctp), false},
		{"network-server", open(odir), true}, // a directory, read-only: O_TMPFILE's O_DIRECTORY bit alone
		{"network-server", open(0o20000000 | odir | 0o2), false},
		{"deny-all", op(abi.OpNop), false},
		{"deny-all", op(abi.OpRead), false},
		{"deny-all", sock(afInet, stream), false},
		{"network-server", sock(afInet, stream), true},
		{"network-server", sock(afNetlink, dgram), false},
		{"network-server", op(abi.OpAccept), true},
		{"network-server", open(0), true},
		{"network-server", open(0o1), false},
		{"network-server", open(0o2), false},
		{"network-server", open(0o100), false},
		{"network-server", op(abi.OpUnlinkat), false},
		{"network-server", op(abi.OpUringCmd), false},
		{"storage", open(0o101 | 0o1000), true},
		{"storage", op(abi.OpRenameat), true},
		{"storage", sock(afUnix, stream), true},
		{"storage", sock(afInet, stream), false},
		{"storage", op(abi.OpUringCmd), false},
		// base and those that extend it: one futex waits and wakes, not
		// FUTEX_WAITV (a container's seccomp profile may deny futex_waitv).
		{"base", op(abi.OpFutexWait), true},
		{"base", op(abi.OpFutexWake), true},
		{"base", op(abi.OpFutexWaitv), false},
		{"default", op(abi.OpFutexWait), true},
		{"default", op(abi.OpFutexWaitv), false},
		{"storage", op(abi.OpFutexWaitv), false},
		{"network-server", op(abi.OpFutexWaitv), false},
	}
	for _, c := range cases {
		data, _ := profiles.Get(c.profile)
		p, err := policy.Parse(data, c.profile)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Decide(c.req).Allow; got != c.allow {
			t.Errorf("%s: %v %+v: allow=%v, want %v", c.profile, c.req.Op, c.req, got, c.allow)
		}
	}
}
