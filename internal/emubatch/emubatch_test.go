package emubatch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
)

// FuzzJSONLLine: any input line gives exactly one line of JSON with the
// documented fields, and the fast parser agrees with encoding/json on
// every line it accepts.
func FuzzJSONLLine(f *testing.F) {
	zero := strings.Repeat("0", 80)
	f.Add(`{"prog": [[6, 0, 0, 1]], "ctx": "` + zero + `"}`)
	f.Add(`{"ctx":"` + zero + `","prog":[[32,0,0,16],[21,0,1,2],[6,0,0,1],[6,0,0,0]]}`)
	f.Add(`{"prog": [[6, 0, 0, 01]], "ctx": "` + zero + `"}`)
	f.Add(`{"prog": [[6, 0, 0, 1e2]], "ctx": "` + zero + `"}`)
	f.Add(`{"prog": [[6, 0, 0, 1]], "prog": [], "ctx": "` + zero + `"}`)
	f.Add(`{"prog": [], "ctx": "\u0030` + zero[1:] + `"}`)
	f.Add(`{"prog": [[6, 0, 0, 4294967296]], "ctx": "` + zero + `"}`)
	f.Add(`{"PROG": [[6, 0, 0, 1]], "ctx": "` + zero + `"}`)
	f.Add(`{"prog": [[6, 0, 0, 1]], "ctx": "` + zero + `", "ctx": "` + zero + `"}`)
	f.Add(`{"prog": [[6, 0, 0, 1]], "Ctx": "` + zero + `"}`)
	f.Fuzz(func(t *testing.T, line string) {
		var fctx, sctx [abi.CtxSize]byte
		if fast, ok := fastRequest([]byte(line), &fctx); ok {
			slow, msg := slowRequest([]byte(line), &sctx)
			if msg != "" || !slices.Equal(fast, slow) || fctx != sctx {
				t.Fatalf("fast parser accepted %q as %v %x; encoding/json: %v %x %q", line, fast, fctx, slow, sctx, msg)
			}
		}
		out, _ := Answer(nil, []byte(line), 1, binary.LittleEndian)
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("output is not one line: %q", out)
		}
		var v struct {
			Valid *bool   `json:"valid"`
			Error *string `json:"error"`
			Ret   *uint32 `json:"ret"`
			Allow *bool   `json:"allow"`
		}
		if err := json.Unmarshal(out, &v); err != nil || v.Valid == nil {
			t.Fatalf("output %q: %v", out, err)
		}
		if *v.Valid != (v.Ret != nil) || *v.Valid != (v.Allow != nil) || *v.Valid == (v.Error != nil) {
			t.Fatalf("inconsistent output %q", out)
		}
		if *v.Valid && *v.Allow != (*v.Ret != 0) {
			t.Fatalf("allow disagrees with ret: %q", out)
		}
	})
}

// TestFastRequest checks which lines the scanner reads itself (the usual
// form, either key order, any white space) and which it leaves to
// encoding/json.
func TestFastRequest(t *testing.T) {
	zero := strings.Repeat("0", 80)
	tests := []struct {
		line string
		ok   bool
	}{
		{`{"prog": [[6, 0, 0, 1]], "ctx": "` + zero + `"}`, true},
		{` { "ctx" :"` + zero + `" ,` + "\t" + `"prog":[ ] }` + "\r\n", true},
		{`{"prog": [[32,0,0,16],[21,0,1,2],[6,0,0,1],[6,0,0,0]], "ctx": "` + zero + `"}`, true},
		{`{"prog": [[6, 0, 0, 01]], "ctx": "` + zero + `"}`, false},         // leading zero
		{`{"prog": [[6, 0, 0, 4294967296]], "ctx": "` + zero + `"}`, false}, // k out of range
		{`{"prog": [[6, 0, 0, 1e2]], "ctx": "` + zero + `"}`, false},        // exponent
		{`{"prog": [], "ctx": "\u0030` + zero[1:] + `"}`, false},            // escape
		{`{"prog": [], "prog": [], "ctx": "` + zero + `"}`, false},          // duplicate key
		{`{"prog": [], "ctx": "` + zero + `", "x": 1}`, false},              // other key
		{`{"prog": []}`, false},                          // no ctx
		{`{"prog": [], "ctx": "` + zero + `"} x`, false}, // trailing text
	}
	for _, tt := range tests {
		var ctx [abi.CtxSize]byte
		insns, ok := fastRequest([]byte(tt.line), &ctx)
		if ok != tt.ok {
			t.Errorf("fastRequest(%q): ok %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if ok {
			var sctx [abi.CtxSize]byte
			slow, msg := slowRequest([]byte(tt.line), &sctx)
			if msg != "" || !slices.Equal(insns, slow) || ctx != sctx {
				t.Errorf("fastRequest(%q) = %v; encoding/json: %v %q", tt.line, insns, slow, msg)
			}
		}
	}
}

// zeros is an endless input without a newline, like /dev/zero.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestRunLongLine: a line longer than MaxLine is answered as malformed and
// ends the run with an error, also when it never ends (/dev/zero).
func TestRunLongLine(t *testing.T) {
	zero := strings.Repeat("0", 80)
	ok := `{"prog": [[6, 0, 0, 1]], "ctx": "` + zero + `"}` + "\n"
	for _, in := range []io.Reader{
		strings.NewReader(ok + strings.Repeat(" ", MaxLine+1) + "\n" + ok),
		io.MultiReader(strings.NewReader(ok), zeros{}),
	} {
		var out bytes.Buffer
		malformed, err := Run(in, &out, binary.LittleEndian)
		if !malformed || err == nil || !strings.Contains(err.Error(), "input line 2 is longer than 1048576 bytes") {
			t.Errorf("malformed %v, err %v", malformed, err)
		}
		want := `{"valid":true,"ret":1,"allow":true}` + "\n" + `{"valid":false,"error":"bad input line 2: longer than 1048576 bytes"}` + "\n"
		if out.String() != want {
			t.Errorf("output %q, want %q", out.String(), want)
		}
	}
}
