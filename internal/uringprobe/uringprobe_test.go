package uringprobe

import (
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// TestProbes: every opcode is probed, names and user data are unique (the
// runner matches completions by user data), and every SQE is well formed.
func TestProbes(t *testing.T) {
	ps := Probes()
	names, uds := map[string]bool{}, map[uint64]bool{}
	var ops [abi.OpLast]bool
	for _, p := range ps {
		if names[p.Name] || uds[p.Req.UserData] || p.Req.UserData == 0 {
			t.Errorf("probe %q: duplicate name or user data %d", p.Name, p.Req.UserData)
		}
		names[p.Name], uds[p.Req.UserData] = true, true
		ops[p.Req.Op] = true
		s := SQE(p.Req)
		if s.Opcode != p.Req.Op || s.UserData != p.Req.UserData || s.Flags != p.Req.Flags {
			t.Errorf("probe %q: SQE %+v does not carry the request's opcode, user data and flags", p.Name, s)
		}
	}
	for op, seen := range ops {
		if !seen {
			t.Errorf("opcode %v is not probed", abi.Opcode(op))
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Plain, SQPoll, Async, Linked} {
		if got, err := ParseMode(string(m)); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMode("fast"); err == nil {
		t.Error("ParseMode(fast) succeeded")
	}
	if Async.Flags() != abi.IOSQEAsync || Plain.Flags() != 0 {
		t.Error("mode flags")
	}
}
