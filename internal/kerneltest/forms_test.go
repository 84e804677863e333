package kerneltest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// The two forms of a default-deny plan must make the kernel decide alike:
// the default form (no filter for an opcode the policy always allows, a
// ret #0 filter for one it always denies, newer opcodes denied one by one
// when applied) and the DENY_REST form (a ret #1 filter for every always
// allowed opcode, DENY_REST on the last registration). The default form
// is only cheaper; these tests show it decides nothing differently.

// formsProbe submits, on r, a NOP that fails on purpose (it injects
// -EIO as its result) linked to a request of opcode op with flags, whose
// descriptor is -1 and other fields zero, and returns both results. The
// kernel prepares and filters the probe when it is submitted; if it lets
// the probe through, the probe is cancelled (-ECANCELED) when the NOP
// fails, so no probe ever runs; if a filter denies it, it completes with
// -EACCES. A probe whose preparation fails completes with that error,
// before any filter.
func formsProbe(r *kernel.Ring, op abi.Opcode, flags uint8) (head, probe int32, err error) {
	eio := -int32(unix.EIO)
	sqes := []kernel.SQE{
		{Opcode: abi.OpNop, Flags: abi.IOSQEIOLink, FD: -1, OpFlags: 1 /* IORING_NOP_INJECT_RESULT */, Len: uint32(eio), UserData: 1},
		{Opcode: op, Flags: flags, FD: -1, UserData: 2},
	}
	if _, err := r.Submit(sqes, 0); err != nil {
		return 0, 0, err
	}
	const cqeFMore, cqeFNotif = 1 << 1, 1 << 3
	seen, more := 0, 0
	for seen < 2 || more > 0 {
		cqes, err := r.Wait(1)
		if err != nil {
			return 0, 0, err
		}
		for _, c := range cqes {
			switch {
			case c.Flags&cqeFNotif != 0:
				// A zero-copy send's notification, after its result
				// with F_MORE: the buffer is free.
				more--
			case c.UserData == 1:
				head = c.Res
				seen++
			case c.UserData == 2:
				probe = c.Res
				seen++
				if c.Flags&cqeFMore != 0 {
					more++
				}
			default:
				return 0, 0, fmt.Errorf("completion with user_data %d", c.UserData)
			}
		}
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("%d completions for 2 requests", seen)
	}
	return head, probe, nil
}

// TestFormsAgree registers, for each built-in profile and for random
// default-deny policies over every opcode, both forms of the plan with
// ringfence.ApplyToRing on two fresh rings (the default form's newer
// opcodes included: the kernel ends them with EINVAL), probes every
// opcode with and without IOSQE_ASYNC on both (formsProbe), and requires
// the same results from both rings. For opcodes without per-opcode data
// it also requires the kernel's verdict to be the plan's on the context
// of the probe. Each random policy allows NOP first, so that the failing
// NOP head holds the probe back.
func TestFormsAgree(t *testing.T) {
	v := needFilters(t)
	s := seed(t)
	var pols []*policy.Policy
	var names []string
	for _, name := range profiles.Names() {
		p, err := ringfence.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		pols, names = append(pols, p), append(names, "profile "+name)
	}
	all := make([]abi.Opcode, abi.OpLast)
	for i := range all {
		all[i] = abi.Opcode(i)
	}
	nrand := int(envInt(t, "RINGFENCE_KT_FORM_POLICIES", 24))
	for i := 0; i < nrand; i++ {
		g := policygen.New(s, 0xf0<<32|uint64(i))
		p := g.Policy(policygen.Options{Ops: all, Kernel: v, MaxRules: 12, MaxConds: 2})
		p.Default = policy.Deny
		p.Rules = append([]policy.Rule{{Ops: []abi.Opcode{abi.OpNop}, Action: policy.Allow}}, p.Rules...)
		if err := p.Validate(); err != nil {
			t.Fatalf("random policy %d: %v", i, err)
		}
		pols, names = append(pols, p), append(names, fmt.Sprintf("random policy %d (seed=%d)", i, s))
	}
	marked, _, err := prepMarksAsync()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Linux %v: opcodes whose filters see IOSQE_ASYNC without it: %v", v, marked)
	var probes, decided, checked, noFilter, differ int
	for i, p := range pols {
		var rings [2]*kernel.Ring
		var plans [2]*compile.Plan
		for f, denyRest := range []bool{false, true} {
			plan, err := compile.Compile(p, compile.Options{Kernel: v, ByteOrder: binary.NativeEndian, DenyRest: denyRest})
			if err != nil {
				t.Fatalf("%s: %v", names[i], err)
			}
			r, err := kernel.NewRing(kernel.Params{Entries: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := ringfence.ApplyToRing(r.FD(), plan); err != nil {
				t.Fatalf("%s, DENY_REST form %v: %v", names[i], denyRest, err)
			}
			rings[f], plans[f] = r, plan
		}
		if !plans[0].DeniesNew() {
			t.Fatalf("%s: the default form does not deny newer opcodes", names[i])
		}
		if plans[0].DenyNewOpcodes {
			differ++ // else nothing is always allowed: both forms use DENY_REST
		}
		for op := range abi.Opcode(abi.OpLast) {
			ctxFree := true
			if info, _ := op.Info(); info.View != abi.ViewCommon {
				ctxFree = false
			}
			for _, flags := range []uint8{0, abi.IOSQEAsync} {
				var heads, res [2]int32
				for f := range rings {
					h, q, err := formsProbe(rings[f], op, flags)
					if err != nil {
						t.Fatalf("%s: %v flags %#x: %v", names[i], op, flags, err)
					}
					heads[f], res[f] = h, q
				}
				probes++
				if heads != [2]int32{heads[0], heads[0]} || res != [2]int32{res[0], res[0]} {
					t.Errorf("%s (Linux %v): %v flags %#x: default form: NOP %d, probe %d; DENY_REST form: NOP %d, probe %d",
						names[i], v, op, flags, heads[0], res[0], heads[1], res[1])
					continue
				}
				if res[0] != eacces && res[0] != -int32(unix.ECANCELED) {
					continue // refused by its preparation, before any filter
				}
				decided++
				if !ctxFree {
					continue
				}
				checked++
				seen := flags
				if slices.Contains(marked, op) {
					seen |= abi.IOSQEAsync
				}
				ctx := policy.Request{Op: op, UserData: 2, SQEFlags: seen}.Ctx(binary.NativeEndian)
				for f, plan := range plans {
					if want := plan.Decide(ctx); want.Allow != (res[0] != eacces) {
						t.Errorf("%s (Linux %v): %v flags %#x: the kernel says %d, the plan (DENY_REST form %v) %s\n%s",
							names[i], v, op, flags, res[0], f == 1, allowWord(want.Allow), policyYAML(p))
					} else if f == 0 && want.Allow && len(want.Runs) == 0 {
						noFilter++
					}
				}
			}
		}
	}
	vmtest.Figure(t, "form probes", probes)
	t.Logf("Linux %v: %d policies (%d with two different forms), %d probes, same results in both forms; %d decided by the filters (the rest refused by their preparation), %d checked against the plan, %d allowed with no filter run",
		v, len(pols), differ, probes, decided, checked, noFilter)
	if differ < len(pols)/2 {
		t.Errorf("only %d of %d policies have two different forms", differ, len(pols))
	}
	if decided < probes/2 || noFilter == 0 {
		t.Errorf("too few probes reach the filters: %d of %d (%d allowed with no filter)", decided, probes, noFilter)
	}
}

// asyncSeen returns a filter that allows a request when its context's
// sqe_flags show IOSQE_ASYNC (x86-64 byte order: the flags are bits 8 to
// 15 of the word at offset 8).
func asyncSeen() []cbpf.Instruction {
	return []cbpf.Instruction{
		cbpf.LoadAbs(8),
		cbpf.ALUK(cbpf.AluRsh, 8),
		cbpf.ALUK(cbpf.AluAnd, abi.IOSQEAsync),
		cbpf.RetAcc(),
	}
}

// prepMarksAsync returns, for every opcode but NOP, whether the kernel's
// filters see IOSQE_ASYNC on a request of that opcode submitted without
// it (formsProbe's request: descriptor -1, other fields zero), and the
// opcodes whose preparation refuses that request (then nobody knows).
func prepMarksAsync() (marked, unknown []abi.Opcode, err error) {
	r, err := kernel.NewRing(kernel.Params{Entries: 8})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	for op := abi.Opcode(1); op < abi.OpLast; op++ {
		if err := r.RegisterFilter(op, asyncSeen(), 0, 0); err != nil {
			return nil, nil, err
		}
	}
	for op := abi.Opcode(1); op < abi.OpLast; op++ {
		_, res, err := formsProbe(r, op, 0)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("%v: %v", op, err)
		case res == -int32(unix.ECANCELED):
			marked = append(marked, op)
		case res != eacces:
			unknown = append(unknown, op)
		}
	}
	return marked, unknown, nil
}

// TestPrepMarksAsync records which opcodes the kernel's filters see with
// IOSQE_ASYNC though the request did not set it: their preparation forces
// the request to run asynchronously, and on some kernels that shows in
// the context's sqe_flags. A policy condition on sqe_flags sees it.
func TestPrepMarksAsync(t *testing.T) {
	v := needFilters(t)
	marked, unknown, err := prepMarksAsync()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Linux %v: IOSQE_ASYNC seen without it on %v; not known (the request is refused before the filters) for %v", v, marked, unknown)
	if want := abi.AlwaysAsync(); !slices.Equal(marked, want) {
		t.Errorf("Linux %v: IOSQE_ASYNC seen on %v; abi.AlwaysAsync says %v", v, marked, want)
	}
	if len(marked)+len(unknown) == abi.OpLast-1 {
		t.Errorf("Linux %v: no opcode was seen without IOSQE_ASYNC: the probe does not work", v)
	}
}
