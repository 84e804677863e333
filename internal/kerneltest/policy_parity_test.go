package kerneltest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/internal/vm/vmtest"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// Policy parity: random policies compiled for the running kernel and
// registered as ring filters must make the kernel decide real requests as
// the reference evaluator (policy.Policy.Decide) decides them, judged on
// the context ringfence predicts for each request (kernel.Request.Ctx, read
// back as a policy request with ringfence.RequestFromCtx).
//
// Environment (forwarded into the VM by the harness), besides
// RINGFENCE_KT_SEED:
//
//	RINGFENCE_KT_POLICIES=N          random policies (default 400)
//	RINGFENCE_KT_POLICY_REQUESTS=N   requests per policy (default 32)
const (
	envPolicies       = "RINGFENCE_KT_POLICIES"
	envPolicyRequests = "RINGFENCE_KT_POLICY_REQUESTS"
)

// ppSetup makes what requests need: a directory with a file "f" and a
// subdirectory "d" (opened as the directory fd), and UDP sockets to
// connect. Everything is closed when t ends.
func ppSetup(t *testing.T, g *ppGen) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(dfd) })
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(udp) })
	udp6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(udp6) })
	g.dir, g.udpFD, g.udp6FD = int32(dfd), int32(udp), int32(udp6)
}

// TestPolicyParityGenerator checks, on any machine, that the random
// policies are valid, that their YAML reads back to a policy deciding as
// they do, and that they compile for every kernel generation. Inside the
// VM it checks a smaller sample: the generator does not depend on the
// kernel, and the VM's time is for TestPolicyParity.
func TestPolicyParityGenerator(t *testing.T) {
	n := 200
	if inVM() {
		n = 40
	}
	g := &ppGen{dir: unix.AT_FDCWD, udpFD: -1, udp6FD: -1}
	g.seed(1, 2)
	conds, bigSets, reqs, byRule, allowed := 0, 0, 0, 0, 0
	for _, k := range []abi.Version{{Major: 7, Minor: 0}, {Major: 7, Minor: 3}} {
		g.k = k
		for i := 0; i < n; i++ {
			p := g.policy()
			if err := p.Validate(); err != nil {
				t.Fatalf("policy %d: the generator made an invalid policy: %v\n%s", i, err, policyYAML(p))
			}
			back, err := policy.Parse([]byte(policyYAML(p)), "random.yaml")
			if err != nil {
				t.Fatalf("policy %d: its YAML does not parse: %v\n%s", i, err, policyYAML(p))
			}
			plan, err := compile.Compile(p, compile.Options{Kernel: k, ByteOrder: binary.NativeEndian})
			if err != nil {
				t.Fatalf("policy %d: %v\n%s", i, err, policyYAML(p))
			}
			for _, r := range p.Rules {
				conds += len(r.Conds)
				for _, c := range r.Conds {
					if len(c.Values) >= 10 {
						bigSets++
					}
				}
			}
			for j := 0; j < 50; j++ {
				q := g.request(p)
				ctx, ok := q.Ctx(k)
				if !ok {
					continue
				}
				pr := ringfence.RequestFromCtx(ctx, binary.NativeEndian)
				want := p.Decide(pr)
				reqs++
				if want.Allow {
					allowed++
				}
				if want.Rule >= 0 && len(p.Rules[want.Rule].Conds) > 0 {
					byRule++
				}
				if got := back.Decide(pr); got != want {
					t.Fatalf("policy %d: read back from YAML it decides %v differently (%+v, want %+v)\n%s", i, pr, got, want, policyYAML(p))
				}
				if got := plan.Decide(ctx).Allow; got != want.Allow {
					t.Fatalf("policy %d: the plan decides %v differently in the emulator\n%s", i, pr, policyYAML(p))
				}
			}
		}
	}
	t.Logf("%d conditions (%d sets of 10 or more values); %d requests, %d allowed, %d decided by a rule with conditions", conds, bigSets, reqs, allowed, byRule)
	if conds < 2*n || bigSets == 0 {
		t.Errorf("the generator makes too few conditions: %d conditions, %d sets of 10 or more values", conds, bigSets)
	}
	if byRule < reqs/4 || allowed < reqs/4 || allowed > reqs*3/4 {
		t.Errorf("the requests are unbalanced: of %d, %d allowed, %d decided by a rule with conditions", reqs, allowed, byRule)
	}
}

// runUnfiltered runs q on base, or on a ring of its own when fresh.
func runUnfiltered(base *kernel.Ring, q kernel.Request, fresh bool) (int32, error) {
	if !fresh {
		return run(base, q)
	}
	r, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return run(r, q)
}

// condsFor reports whether a rule with conditions names op.
func condsFor(p *policy.Policy, op abi.Opcode) bool {
	for _, r := range p.Rules {
		if len(r.Conds) > 0 && r.Names(op) {
			return true
		}
	}
	return false
}

// TestPolicyParity compiles random policies for the running kernel,
// registers each plan on a fresh ring (ring filters, so the test's task
// stays clean; one ring in eight is an SQPOLL ring), submits requests
// biased to the policy's boundaries, and requires the kernel's verdict
// (-EACCES or not) to equal policy.Decide on the context ringfence
// predicts for the request. Not compared: requests that get -EACCES
// without filters too, requests ringfence predicts the preparation
// refuses (they must not get -EACCES), and IO_DRAIN on a ring that has
// seen CQE_SKIP_SUCCESS (it must get -EOPNOTSUPP). A mismatch prints the
// policy as YAML, the request, the predicted context, the context the
// kernel really built (read back bit by bit, for the first few), the
// emulator's verdict on the plan, and the plan.
func TestPolicyParity(t *testing.T) {
	v := needFilters(t)
	s := seed(t)
	npol := int(envInt(t, envPolicies, 400))
	nreq := int(envInt(t, envPolicyRequests, 32))
	g := &ppGen{k: v}
	ppSetup(t, g)
	base := newRing(t, kernel.Params{Entries: 4})
	m := &mismatches{t: t}
	var requests, allowed, denied, byRule, conditioned, drained, drainRefused, ownEACCES, prepRefused, regs, denyNew, sqpoll int
	perOp := map[string]int{}
	start := time.Now()
	for i := 0; i < npol; i++ {
		g.seed(s, 0x9011c7<<32|uint64(i))
		p := g.policy()
		if err := p.Validate(); err != nil {
			t.Fatalf("seed=%d policy=%d: the generator made an invalid policy: %v\n%s", s, i, err, policyYAML(p))
		}
		plan, err := compile.Compile(p, compile.Options{Kernel: v, ByteOrder: binary.NativeEndian})
		if err != nil {
			t.Fatalf("seed=%d policy=%d: compile for Linux %v: %v\n%s", s, i, v, err, policyYAML(p))
		}
		params := kernel.Params{Entries: 4}
		if i%8 == 7 {
			params = kernel.Params{Entries: 4, Flags: kernel.SetupSQPoll, SQThreadIdle: 20}
		}
		ring, err := kernel.NewRing(params)
		skipSeen := false
		if err != nil {
			t.Fatal(err)
		}
		// As ringfence applies plans: the registrations, then (for a
		// default-deny plan) the opcodes this kernel has beyond
		// ringfence's table, up to the EINVAL that ends them.
		if err := ringfence.ApplyToRing(ring.FD(), plan); err != nil {
			ring.Close()
			t.Fatalf("seed=%d policy=%d: applying the plan failed: %v\n%s\nplan:\n%s", s, i, err, policyYAML(p), plan.Text())
		}
		regs += len(plan.Registrations)
		if plan.DenyNewOpcodes {
			denyNew++
		}
		for j := 0; j < nreq; j++ {
			q := g.request(p)
			where := fmt.Sprintf("seed=%d policy=%d request=%d", s, i, j)
			// IO_DRAIN only on the last request of one ring in four: on 7.0
			// to 7.2 it marks every later request of its ring ASYNC. Its
			// unfiltered run is on a ring of its own for the same reason.
			drain := i%4 == 3 && j == nreq-1
			if drain {
				q.Flags |= abi.IOSQEIODrain
				drained++
			}
			res, err := run(ring, q)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			skipped := skipSeen || q.Flags&abi.IOSQECQESkipSuccess != 0
			skipSeen = skipped
			// -EACCES may be the request's own failure: then it tells
			// nothing about the filters. Asked only after -EACCES (NOP
			// never fails so), which saves half the submissions.
			if res == eacces && q.Op != abi.OpNop {
				own, err := runUnfiltered(base, q, drain)
				if err != nil {
					t.Fatalf("%s: unfiltered: %v", where, err)
				}
				if own == eacces {
					ownEACCES++
					continue
				}
			}
			// A ring that has seen IOSQE_CQE_SKIP_SUCCESS (on an earlier
			// request, or this one) refuses IO_DRAIN for good: io_init_req
			// fails the request with EOPNOTSUPP before any filter runs.
			// This is the ring's state, which kernel.Request.Ctx cannot
			// know (found by this test; seen on 7.0 to 7.3).
			if q.Flags&abi.IOSQEIODrain != 0 && skipped {
				drainRefused++
				if res != -int32(unix.EOPNOTSUPP) {
					m.add("%s: IO_DRAIN on a ring that has seen CQE_SKIP_SUCCESS: got %d, want -EOPNOTSUPP (%v %+v)", where, res, q.Op, q)
				}
				continue
			}
			ctx, ok := q.Ctx(v)
			if !ok {
				prepRefused++
				if res == eacces {
					m.add("%s: ringfence predicts the kernel's preparation refuses %v %+v, but the kernel answered -EACCES", where, q.Op, q)
				}
				continue
			}
			pr := ringfence.RequestFromCtx(ctx, binary.NativeEndian)
			want := p.Decide(pr)
			kern := res != eacces
			requests++
			perOp[q.Op.String()]++
			if params.Flags&kernel.SetupSQPoll != 0 {
				sqpoll++
			}
			if kern {
				allowed++
			} else {
				denied++
			}
			if want.Rule >= 0 && len(p.Rules[want.Rule].Conds) > 0 {
				byRule++
			}
			if condsFor(p, q.Op) {
				conditioned++
			}
			if kern != want.Allow {
				// Tell a wrong prediction (the kernel's real context
				// differs) from a wrong plan (the emulator disagrees with
				// the evaluator on the predicted context).
				seen := "(not read)"
				if m.shown < 3 {
					if got, err := observeCtx(q); err != nil {
						seen = "(" + err.Error() + ")"
					} else {
						seen = hexWords(got) + " (words 0, 1: user_data of the read-back)"
					}
				}
				raw := ctx.Encode(binary.NativeEndian)
				m.add("%s: policy parity mismatch on Linux %v: kernel %s (res %d), policy.Decide %s (%s), plan in the emulator %s\n"+
					"  request %v flags %#x %+v\n  as the evaluator sees it: %v\n  predicted context %s\n  predicted words %s\n  kernel's context read back %s\n"+
					"policy:\n%splan:\n%s",
					where, v, allowWord(kern), res, allowWord(want.Allow), p.Describe(want), allowWord(plan.Decide(ctx).Allow),
					q.Op, q.Flags, q, pr, hex.EncodeToString(raw[:]), hexWords(ctxWords(ctx)), seen,
					policyYAML(p), plan.Text())
			}
		}
		ring.Close()
	}
	var ops []string
	for _, k := range sortedKeys(perOp) {
		ops = append(ops, fmt.Sprintf("%s %d", k, perOp[k]))
	}
	vmtest.Figure(t, "policy-parity requests", requests)
	vmtest.Figure(t, "mismatches", m.n)
	if m.n == 0 {
		t.Logf("Linux %v: policy parity: %d policies, %d requests, 0 mismatches in %v (%d registrations, %d plans denying newer opcodes; %d allowed, %d denied; %d with conditions to test, %d decided by a rule with conditions; %s; %d on SQPOLL rings; %d with IO_DRAIN); not compared: %d requests failing with EACCES unfiltered, %d refused by preparation, %d IO_DRAIN refused after CQE_SKIP_SUCCESS",
			v, npol, requests, time.Since(start).Round(time.Millisecond), regs, denyNew, allowed, denied, conditioned, byRule, strings.Join(ops, ", "), sqpoll, drained, ownEACCES, prepRefused, drainRefused)
	} else {
		t.Errorf("Linux %v: policy parity: %d mismatches in %d requests (seed=%d)", v, m.n, requests, s)
	}
	if allowed < requests/10 || denied < requests/10 || byRule < requests/10 {
		t.Errorf("the generators are unbalanced: %d allowed, %d denied, %d decided by a rule with conditions, of %d", allowed, denied, byRule, requests)
	}
}
