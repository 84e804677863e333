package cli

import (
	"testing"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/uringtrace"
	"github.com/ringfence/ringfence/kernel"
)

// TestLoggedSkipsCanary: the denial log writes every denial but that of
// ringfence's canary request.
func TestLoggedSkipsCanary(t *testing.T) {
	k := abi.Version{Major: 7, Minor: 3}
	for _, c := range []struct {
		ev   uringtrace.Event
		want bool
	}{
		{uringtrace.Event{Kind: uringtrace.Denied, Filter: true, Req: kernel.Request{Op: abi.OpNop, UserData: ringfence.CanaryUserData}}, false},
		{uringtrace.Event{Kind: uringtrace.Denied, Filter: true, Req: kernel.Request{Op: abi.OpNop, UserData: ringfence.CanaryUserData + 1}}, true},
		{uringtrace.Event{Kind: uringtrace.Denied, Filter: true, Req: kernel.Request{Op: abi.OpNop}}, true},
		{uringtrace.Event{Kind: uringtrace.Denied, Req: kernel.Request{Op: abi.OpSocket, UserData: ringfence.CanaryUserData}}, true},
		{uringtrace.Event{Kind: uringtrace.Submitted, Req: kernel.Request{Op: abi.OpNop}}, false},
	} {
		if got := logged(c.ev, k); got != c.want {
			t.Errorf("logged(%+v) = %v, want %v", c.ev, got, c.want)
		}
	}
}
