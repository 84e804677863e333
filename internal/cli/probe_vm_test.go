package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// TestProbeInVM checks "ringfence probe --json" against the kernel: filter
// support as the boot probe says, each opcode's pdu_size as the opcode
// table says for this kernel, and no_new_privs and "task filtered" before
// and under "ringfence run".
func TestProbeInVM(t *testing.T) {
	needVM(t)
	supported := kernel.Supported() == nil
	k, err := kernel.Version()
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runHelper(t, helperCmd("main", "probe", "--json"))
	var r probeReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe --json: %v\n%s\n%s", err, out, errs)
	}
	if !supported {
		if code != exitDenied || r.RingFilters || r.TaskFilters || !strings.Contains(r.Why, "no io_uring BPF filters") {
			t.Fatalf("kernel without filters: exit %d, report %+v", code, r)
		}
		if r.TaskFiltered != "no (this kernel has no task filters)" || r.NoNewPrivs != "no" {
			t.Fatalf("kernel without filters: task_filtered %q, no_new_privs %q", r.TaskFiltered, r.NoNewPrivs)
		}
		return
	}
	if code != exitOK || !r.RingFilters || !r.TaskFilters || !r.TaskRestrictions || r.Version != k.String() {
		t.Fatalf("exit %d, report %+v", code, r)
	}
	if r.NoNewPrivs != "no" || r.TaskFiltered != "no" {
		t.Fatalf("fresh process: no_new_privs %q, task_filtered %q", r.NoNewPrivs, r.TaskFiltered)
	}
	if len(r.PDUSizes) != abi.OpLast {
		t.Fatalf("%d pdu sizes, want %d", len(r.PDUSizes), abi.OpLast)
	}
	for i, p := range r.PDUSizes {
		info, _ := abi.Opcode(i).Info()
		want := uint8(0)
		if info.HasData(k) {
			want = info.PDUSize
		}
		if p.Op != info.Name || p.PDUSize != want {
			t.Errorf("pdu_size %s = %d, want %s = %d on %v", p.Op, p.PDUSize, info.Name, want, k)
		}
	}
	if r.LastOp == nil || r.LastOp.Op != abi.OpLast-1 || len(r.Supported) == 0 {
		t.Errorf("opcodes: last %+v, %d supported, unsupported %v", r.LastOp, len(r.Supported), r.Unsupported)
	}
	t.Logf("%v: %d opcodes supported, not supported: %v", k, len(r.Supported), r.Unsupported)
	// Under ringfence run, the program is filtered and has no_new_privs.
	out, errs, code = runHelper(t, helperCmd("main", append(runArgs("--profile", "default", "--"), helperArgv("main", "probe", "--json")...)...))
	r = probeReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK {
		t.Fatalf("probe under run: exit %d, %v\n%s\n%s", code, err, out, errs)
	}
	if r.NoNewPrivs != "yes" || r.TaskFiltered != "yes" {
		t.Fatalf("under ringfence run: no_new_privs %q, task_filtered %q", r.NoNewPrivs, r.TaskFiltered)
	}
}
