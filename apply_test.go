package ringfence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/policy"
)

// fakeKernel records every call and fails the one it is told to.
type fakeKernel struct {
	version abi.Version
	rings   []int // open io_uring descriptors
	// failures: which call fails. reg is the index of the registration
	// that fails (-1 for none).
	failSupport, failVersion, failNNP, failScan, failClose, failExec, keepRings bool
	failReg                                                                     int
	// opLast is the fake kernel's IORING_OP_LAST (abi.OpLast when 0):
	// registering a filter for a higher opcode fails with EINVAL.
	opLast int
	// failOp fails the registration of a filter for this opcode (when
	// failOpSet) with an error other than EINVAL.
	failOp                                                                      abi.Opcode
	failOpSet                                                                   bool
	execDrops, execDropUnknown, failRestrict, failSeccomp, restricted, filtered bool
	// forged: registrations answer success without reaching the kernel
	// (a launcher's seccomp filter); failVerify: the check cannot tell.
	forged, failVerify bool

	calls  []string
	execed bool
	nnp    bool
}

var errInjected = errors.New("injected failure")

func newFake() *fakeKernel {
	return &fakeKernel{version: abi.Version{Major: 7, Minor: 0}, failReg: -1}
}

func (k *fakeKernel) Supported() error {
	k.calls = append(k.calls, "support")
	if k.failSupport {
		return fmt.Errorf("%w: no filters", errInjected)
	}
	return nil
}

func (k *fakeKernel) Version() (abi.Version, error) {
	k.calls = append(k.calls, "version")
	if k.failVersion {
		return abi.Version{}, errInjected
	}
	return k.version, nil
}

func (k *fakeKernel) ExecKeepsFilters() error {
	k.calls = append(k.calls, "execdrop")
	switch {
	case k.execDrops:
		return fmt.Errorf("Linux 7.0.13 (fake): %w", ErrExecDropsFilters)
	case k.execDropUnknown:
		return fmt.Errorf("check that io_uring filters survive execve: %w", errInjected)
	}
	return nil
}

func (k *fakeKernel) RegisterTaskRestrictions(rs []abi.Restriction) error {
	k.calls = append(k.calls, fmt.Sprintf("restrict %d", len(rs)))
	switch {
	case !k.nnp:
		return errors.New("EACCES: no_new_privs not set")
	case k.restricted || k.filtered:
		return fmt.Errorf("already restricted, or filtered: %w", syscall.EPERM)
	case k.failRestrict:
		return errInjected
	}
	k.restricted = true
	return nil
}

func (k *fakeKernel) InstallSeccomp(prog []cbpf.Instruction) error {
	k.calls = append(k.calls, "seccomp")
	if !k.nnp {
		return errors.New("EACCES: no_new_privs not set")
	}
	if k.failSeccomp {
		return errInjected
	}
	return cbpf.CheckClassic(prog)
}

func (k *fakeKernel) SetNoNewPrivs() error {
	k.calls = append(k.calls, "nnp")
	if k.failNNP {
		return errInjected
	}
	k.nnp = true
	return nil
}

func (k *fakeKernel) RegisterTaskFilter(op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	n := 0
	for _, c := range k.calls {
		if strings.HasPrefix(c, "reg ") {
			n++
		}
	}
	k.calls = append(k.calls, fmt.Sprintf("reg %v", op))
	if !k.nnp {
		return errors.New("EACCES: no_new_privs not set")
	}
	if len(prog) == 0 {
		return errors.New("EINVAL: empty program")
	}
	if n == k.failReg {
		return errInjected
	}
	if err := k.opErr(op); err != nil {
		return err
	}
	if !k.forged {
		k.filtered = true
	}
	return nil
}

func (k *fakeKernel) VerifyFiltered() error {
	k.calls = append(k.calls, "verify")
	switch {
	case k.failVerify:
		return errInjected
	case k.forged || !k.filtered:
		return ErrFiltersMissing
	}
	return nil
}

// opErr is the fake kernel's answer to a filter for op: EINVAL beyond its
// last opcode, an injected failure for failOp.
func (k *fakeKernel) opErr(op abi.Opcode) error {
	last := k.opLast
	if last == 0 {
		last = abi.OpLast
	}
	switch {
	case int(op) >= last:
		return fmt.Errorf("opcode %d: %w", op, syscall.EINVAL)
	case k.failOpSet && op == k.failOp:
		return fmt.Errorf("%w: %w", errInjected, syscall.ENOMEM)
	}
	return nil
}

func (k *fakeKernel) RegisterRingFilter(fd int, op abi.Opcode, prog []cbpf.Instruction, flags uint32, pdu uint8) error {
	k.calls = append(k.calls, fmt.Sprintf("ringreg %d %v", fd, op))
	return k.opErr(op)
}

func (k *fakeKernel) RingFDs() ([]int, error) {
	k.calls = append(k.calls, "scan")
	if k.failScan {
		return nil, errInjected
	}
	return append([]int(nil), k.rings...), nil
}

func (k *fakeKernel) Close(fd int) error {
	k.calls = append(k.calls, fmt.Sprintf("close %d", fd))
	if k.failClose {
		return errInjected
	}
	if k.keepRings {
		return nil // pretends to close, leaves it open
	}
	for i, r := range k.rings {
		if r == fd {
			k.rings = append(k.rings[:i], k.rings[i+1:]...)
			break
		}
	}
	return nil
}

func (k *fakeKernel) Exec(path string, argv, envv []string) error {
	k.calls = append(k.calls, "exec "+path)
	if k.failExec {
		return errInjected
	}
	k.execed = true
	return errExecuted // a real exec does not return; tell the test it happened
}

var errExecuted = errors.New("executed (fake)")

// profilePlan parses a built-in profile and counts the task filters
// applying it on kernel 7.0 registers: its plan's and the canary.
func profilePlan(t *testing.T, name string) (*policy.Policy, int) {
	t.Helper()
	p, err := Profile(name)
	if err != nil {
		t.Fatalf("Profile(%q): %v", name, err)
	}
	plan, err := Compile(p, abi.Version{Major: 7, Minor: 0})
	if err != nil {
		t.Fatalf("Compile(%q): %v", name, err)
	}
	if len(plan.Registrations) == 0 {
		t.Fatalf("profile %q compiles to no registrations", name)
	}
	return p, len(plan.Registrations) + 1
}

func spec(p *policy.Policy) ExecSpec {
	return ExecSpec{Policy: p, Path: "/bin/true", Args: []string{"true"}}
}

// TestExecUnderFailsClosed makes each step fail in turn and checks that the
// program is never executed and the error names the step.
func TestExecUnderFailsClosed(t *testing.T) {
	p, nreg := profilePlan(t, "default")
	// A policy that needs Linux 7.2: compiling it for 7.0 must fail.
	p72, err := ParsePolicy([]byte("version: 1\ndefault: allow\nrules:\n  - ops: [CONNECT]\n    action: deny\n    when:\n      connect.port: 22\n"), "p72.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name  string
		setup func(k *fakeKernel, s *ExecSpec)
		step  Step
	}
	cases := []tc{
		{"unsupported kernel", func(k *fakeKernel, s *ExecSpec) { k.failSupport = true }, StepSupport},
		{"version unreadable", func(k *fakeKernel, s *ExecSpec) { k.failVersion = true }, StepVersion},
		{"policy needs a newer kernel", func(k *fakeKernel, s *ExecSpec) { s.Policy = p72 }, StepCompile},
		{"no policy", func(k *fakeKernel, s *ExecSpec) { s.Policy = nil }, StepCompile},
		{"kernel drops filters at exec", func(k *fakeKernel, s *ExecSpec) { k.execDrops = true }, StepExecDrop},
		{"exec-drop check fails", func(k *fakeKernel, s *ExecSpec) { k.execDropUnknown = true }, StepExecDrop},
		{"exec-drop check fails, drop allowed", func(k *fakeKernel, s *ExecSpec) { k.execDropUnknown = true; s.AllowExecDrop = true }, StepExecDrop},
		{"no_new_privs refused", func(k *fakeKernel, s *ExecSpec) { k.failNNP = true }, StepNoNewPrivs},
		{"restrictions refused", func(k *fakeKernel, s *ExecSpec) { k.failRestrict = true }, StepRestrict},
		{"seccomp refused", func(k *fakeKernel, s *ExecSpec) { k.failSeccomp = true }, StepSeccomp},
		{"registrations forged", func(k *fakeKernel, s *ExecSpec) { k.forged = true }, StepVerify},
		{"filters check fails", func(k *fakeKernel, s *ExecSpec) { k.failVerify = true }, StepVerify},
		{"fd scan fails", func(k *fakeKernel, s *ExecSpec) { k.failScan = true }, StepRingFDs},
		{"close fails", func(k *fakeKernel, s *ExecSpec) { k.rings = []int{5}; k.failClose = true }, StepRingFDs},
		{"ring survives close", func(k *fakeKernel, s *ExecSpec) { k.rings = []int{5}; k.keepRings = true }, StepRingFDs},
		{"refuse inherited rings", func(k *fakeKernel, s *ExecSpec) { k.rings = []int{3, 7}; s.RingFDs = RefuseRingFDs }, StepRingFDs},
		{"exec fails", func(k *fakeKernel, s *ExecSpec) { k.failExec = true }, StepExec},
	}
	for i := 0; i < nreg; i++ {
		i := i
		cases = append(cases, tc{fmt.Sprintf("registration %d of %d refused", i+1, nreg),
			func(k *fakeKernel, s *ExecSpec) { k.failReg = i }, StepRegister})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := newFake()
			s := spec(p)
			c.setup(k, &s)
			err := ExecUnder(k, s)
			if k.execed {
				t.Fatalf("program was executed; calls %v", k.calls)
			}
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *StepError", err, err)
			}
			if se.Step != c.step {
				t.Fatalf("failed at step %q, want %q: %v", se.Step, c.step, err)
			}
			if c.step == StepRegister {
				if se.Index != k.failReg || se.Count != nreg {
					t.Fatalf("error names registration %d of %d, want %d of %d", se.Index, se.Count, k.failReg, nreg)
				}
				// Nothing after the refused registration was attempted.
				if last := k.calls[len(k.calls)-1]; !strings.HasPrefix(last, "reg ") {
					t.Fatalf("calls after the refused registration: %v", k.calls)
				}
			}
		})
	}
}

// TestExecUnderOrder checks the order of the steps on success: support,
// version, no_new_privs, every registration in plan order, the canary
// last, the companion seccomp filter, the check that the filters are in
// place, the fd scan, closing the rings, exec.
func TestExecUnderOrder(t *testing.T) {
	p, _ := profilePlan(t, "default")
	plan, err := Compile(p, abi.Version{Major: 7, Minor: 0})
	if err != nil {
		t.Fatal(err)
	}
	k := newFake()
	k.rings = []int{4, 9}
	if err := ExecUnder(k, spec(p)); !errors.Is(err, errExecuted) {
		t.Fatal(err)
	}
	if plan.Restrictions == nil {
		t.Fatal("the default profile has no register section")
	}
	want := []string{"support", "execdrop", "version", "nnp", fmt.Sprintf("restrict %d", len(plan.Restrictions.Encode()))}
	for _, r := range plan.Registrations {
		want = append(want, fmt.Sprintf("reg %v", r.Op))
	}
	// The canary, then the first opcode beyond ringfence's table: the
	// (fake) kernel does not have it either, and says so with EINVAL.
	want = append(want, "reg NOP", fmt.Sprintf("reg %v", abi.Opcode(abi.OpLast)))
	want = append(want, "seccomp", "verify", "scan", "close 4", "close 9", "scan", "exec /bin/true")
	if got := strings.Join(k.calls, ","); got != strings.Join(want, ",") {
		t.Fatalf("calls:\n got %v\nwant %v", k.calls, want)
	}
	if !k.execed {
		t.Fatal("program not executed")
	}
}

// TestExecUnderIfSupported runs the program unfiltered, with a warning, on
// a kernel without filters, and only when asked.
func TestExecUnderIfSupported(t *testing.T) {
	p, _ := profilePlan(t, "default")
	k := newFake()
	k.failSupport = true
	var warned []string
	s := spec(p)
	s.IfSupported = true
	s.Name = "the-program"
	s.Warn = func(m string) { warned = append(warned, m) }
	if err := ExecUnder(k, s); !errors.Is(err, errExecuted) {
		t.Fatal(err)
	}
	if !k.execed || len(warned) != 1 || !strings.Contains(warned[0], "running the-program WITHOUT") {
		t.Fatalf("execed %v, warnings %q", k.execed, warned)
	}
	for _, c := range k.calls {
		if strings.HasPrefix(c, "reg ") || c == "nnp" {
			t.Fatalf("unsupported kernel got %q; calls %v", c, k.calls)
		}
	}
}

// TestExecUnderAllowExecDrop runs the program on a kernel that drops
// filters at execve only when asked, and warns loudly, naming the kernel fix.
func TestExecUnderAllowExecDrop(t *testing.T) {
	p, _ := profilePlan(t, "default")
	k := newFake()
	k.execDrops = true
	var warned []string
	s := spec(p)
	s.AllowExecDrop = true
	s.Warn = func(m string) { warned = append(warned, m) }
	if err := ExecUnder(k, s); !errors.Is(err, errExecuted) {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "UNSAFE") || !strings.Contains(warned[0], KernelFixExecDrop) {
		t.Fatalf("warnings %q", warned)
	}
	// Without the opt-in the error names the kernel fix.
	k = newFake()
	k.execDrops = true
	err := ExecUnder(k, spec(p))
	if !errors.Is(err, ErrExecDropsFilters) || !strings.Contains(err.Error(), KernelFixExecDrop) || k.execed {
		t.Fatalf("ExecUnder on a dropping kernel: %v (executed %v)", err, k.execed)
	}
	// ApplyToTask refuses too, before touching the task.
	plan, _ := Compile(p, abi.Version{Major: 7, Minor: 0})
	k = newFake()
	k.execDrops = true
	if err := ApplyToTaskWith(k, plan, ApplyOptions{}); !errors.Is(err, ErrExecDropsFilters) || k.nnp {
		t.Fatalf("ApplyToTaskWith on a dropping kernel: %v (nnp set: %v)", err, k.nnp)
	}
}

// TestExecUnderEmptyPolicy runs a policy that registers nothing.
func TestExecUnderEmptyPolicy(t *testing.T) {
	p, err := ParsePolicy([]byte("version: 1\ndefault: allow\n"), "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := newFake()
	if err := ExecUnder(k, spec(p)); !errors.Is(err, errExecuted) {
		t.Fatalf("%v; calls %v", err, k.calls)
	}
	// Nothing registered: no canary, nothing to check.
	for _, c := range k.calls {
		if strings.HasPrefix(c, "reg ") || c == "verify" {
			t.Fatalf("empty policy: %q; calls %v", c, k.calls)
		}
	}
}

// TestNestedPolicy: a task that already has io_uring restrictions or
// filters (an outer ringfence run) cannot take another restriction set; the
// policy still applies, its register section enforced by the companion
// seccomp filter, with a warning. Without the companion filter that is an
// error.
func TestNestedPolicy(t *testing.T) {
	p, _ := profilePlan(t, "deny-all")
	k := newFake()
	k.filtered = true
	var warned []string
	s := spec(p)
	s.Warn = func(m string) { warned = append(warned, m) }
	if err := ExecUnder(k, s); !errors.Is(err, errExecuted) {
		t.Fatalf("%v; calls %v", err, k.calls)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "enforced by the companion seccomp filter") || !slices.Contains(k.calls, "seccomp") {
		t.Fatalf("warnings %q, calls %v", warned, k.calls)
	}
	plan, _ := Compile(p, abi.Version{Major: 7, Minor: 0})
	k = newFake()
	k.filtered = true
	err := ApplyToTaskWith(k, plan, ApplyOptions{SkipSeccomp: true})
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepRestrict {
		t.Fatalf("nested without the companion filter: %v", err)
	}
}

func TestParseRingFDMode(t *testing.T) {
	for in, want := range map[string]RingFDMode{"close": CloseRingFDs, "refuse": RefuseRingFDs} {
		if got, err := ParseRingFDMode(in); err != nil || got != want {
			t.Errorf("ParseRingFDMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseRingFDMode("keep"); err == nil {
		t.Error("ParseRingFDMode(keep) succeeded")
	}
}

// TestApplyToTaskWith checks no_new_privs handling and the error of a
// refused registration.
func TestApplyToTaskWith(t *testing.T) {
	p, nreg := profilePlan(t, "storage")
	plan, err := Compile(p, abi.Version{Major: 7, Minor: 1})
	if err != nil {
		t.Fatal(err)
	}
	k := newFake()
	if err := ApplyToTaskWith(k, plan, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// execdrop, nnp, restrict, the registrations and the canary (nreg),
	// the newer opcode the (fake) kernel refuses, seccomp, verify.
	if k.calls[0] != "execdrop" || k.calls[1] != "nnp" || len(k.calls) != 6+nreg || k.calls[len(k.calls)-1] != "verify" {
		t.Fatalf("calls %v", k.calls)
	}
	// Without no_new_privs the (fake) kernel refuses, like the real one
	// does for a caller without CAP_SYS_ADMIN.
	k = newFake()
	err = ApplyToTaskWith(k, plan, ApplyOptions{SkipNoNewPrivs: true})
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepRestrict || !strings.Contains(err.Error(), "EACCES") {
		t.Fatalf("SkipNoNewPrivs: %v", err)
	}
	// Registrations that report success without reaching the kernel
	// are found out, also without the companion filter.
	k = newFake()
	k.forged = true
	err = ApplyToTaskWith(k, plan, ApplyOptions{SkipSeccomp: true})
	if !errors.As(err, &se) || se.Step != StepVerify || !errors.Is(err, ErrFiltersMissing) {
		t.Fatalf("forged registrations: %v", err)
	}
}

// TestCanaryRegistration: the canary filter compiles for every kernel with
// filters and refuses exactly the NOP carrying CanaryUserData.
func TestCanaryRegistration(t *testing.T) {
	bo := binary.NativeEndian
	for minor := 0; minor <= 3; minor++ {
		v := abi.Version{Major: 7, Minor: minor}
		r, err := canaryRegistration(v)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		for _, c := range []struct {
			req   policy.Request
			allow bool
		}{
			{policy.Request{Op: abi.OpNop, UserData: CanaryUserData}, false},
			{policy.Request{Op: abi.OpNop, UserData: CanaryUserData, SQEFlags: abi.IOSQEAsync}, false},
			{policy.Request{Op: abi.OpNop}, true},
			{policy.Request{Op: abi.OpNop, UserData: CanaryUserData ^ 1}, true},
			{policy.Request{Op: abi.OpNop, UserData: CanaryUserData ^ 1<<63}, true},
		} {
			w := cbpf.WordsOf(c.req.Ctx(bo).Encode(bo), bo)
			if got := r.Prog.Allows(&w); got != c.allow {
				t.Errorf("%v: canary filter on %+v: allow %v, want %v", v, c.req, got, c.allow)
			}
			if IsCanary(c.req) == c.allow {
				t.Errorf("IsCanary(%+v) = %v", c.req, !c.allow)
			}
		}
	}
}

// TestApplyToRingWith registers every filter on the given ring, in order.
func TestApplyToRingWith(t *testing.T) {
	p, _ := profilePlan(t, "network-server")
	plan, err := Compile(p, abi.Version{Major: 7, Minor: 3})
	if err != nil {
		t.Fatal(err)
	}
	k := newFake()
	if err := ApplyToRingWith(k, 7, plan); err != nil {
		t.Fatal(err)
	}
	if len(k.calls) != len(plan.Registrations)+1 {
		t.Fatalf("%d calls for %d registrations and the newer-opcode probe: %v", len(k.calls), len(plan.Registrations), k.calls)
	}
	for i, r := range plan.Registrations {
		if want := fmt.Sprintf("ringreg 7 %v", r.Op); k.calls[i] != want {
			t.Fatalf("call %d: %q, want %q", i, k.calls[i], want)
		}
	}
}

// TestDenyNewOpcodes checks that the opcodes a kernel has beyond
// ringfence's table are denied, on the task and on a ring: one "ret #0"
// filter each, up to the first the kernel refuses with EINVAL; any other
// refusal fails closed before the program runs; a DENY_REST plan (whose
// stub denies them in the kernel) and a default-allow plan register none.
func TestDenyNewOpcodes(t *testing.T) {
	p, _ := profilePlan(t, "storage")
	plan, err := Compile(p, abi.Version{Major: 7, Minor: 3})
	if err != nil {
		t.Fatal(err)
	}
	newer := func(calls []string, prefix string) []string {
		var out []string
		for _, c := range calls {
			if op, ok := strings.CutPrefix(c, prefix); ok && strings.HasPrefix(op, "OP_") {
				out = append(out, op)
			}
		}
		return out
	}
	// A kernel with three opcodes ringfence does not know.
	k := newFake()
	k.opLast = abi.OpLast + 3
	if err := ExecUnder(k, spec(p)); !errors.Is(err, errExecuted) {
		t.Fatal(err)
	}
	if got, want := newer(k.calls, "reg "), []string{"OP_65", "OP_66", "OP_67", "OP_68"}; !slices.Equal(got, want) {
		t.Errorf("task: newer opcodes tried %v, want %v (three denied, the fourth refused by the kernel)", got, want)
	}
	k = newFake()
	k.opLast = abi.OpLast + 3
	if err := ApplyToRingWith(k, 5, plan); err != nil {
		t.Fatal(err)
	}
	if got := newer(k.calls, "ringreg 5 "); len(got) != 4 {
		t.Errorf("ring: newer opcodes tried %v, want 4", got)
	}
	// Any refusal but EINVAL: the program does not run.
	k = newFake()
	k.opLast = abi.OpLast + 3
	k.failOp, k.failOpSet = abi.OpLast+1, true
	err = ExecUnder(k, spec(p))
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepDenyNew || se.Op != abi.OpLast+1 || k.execed {
		t.Fatalf("refused newer opcode: %v (executed %v)", err, k.execed)
	}
	if !strings.Contains(err.Error(), "deny opcodes newer than ringfence") {
		t.Errorf("error %q does not name the step", err)
	}
	if err := ApplyToRingWith(k, 5, plan); !errors.As(err, &se) || se.Step != StepDenyNew {
		t.Fatalf("ring, refused newer opcode: %v", err)
	}
	// The DENY_REST form and a default-allow policy: nothing to deny.
	rest, err := compile.Compile(p, compile.Options{Kernel: abi.Version{Major: 7, Minor: 3}, DenyRest: true})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := ParsePolicy([]byte("version: 1\ndefault: allow\nrules:\n  - ops: [URING_CMD]\n    action: deny\n"), "allow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	allowPlan, err := Compile(allow, abi.Version{Major: 7, Minor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for name, pl := range map[string]*compile.Plan{"DENY_REST": rest, "default allow": allowPlan} {
		k = newFake()
		k.opLast = abi.OpLast + 3
		if err := ApplyToRingWith(k, 5, pl); err != nil {
			t.Fatal(err)
		}
		if got := newer(k.calls, "ringreg 5 "); len(got) != 0 {
			t.Errorf("%s: newer opcodes registered %v, want none", name, got)
		}
	}
}

// TestRequestFromCtx round-trips requests through the context.
func TestRequestFromCtx(t *testing.T) {
	bo := binary.LittleEndian
	reqs := []policy.Request{
		{Op: abi.OpNop, UserData: 42, SQEFlags: abi.IOSQEAsync},
		{Op: abi.OpSocket, Socket: abi.SocketData{Family: 2, Type: 1, Protocol: 6}},
		{Op: abi.OpOpenat2, Open: abi.OpenData{Flags: 0o100101, Mode: 0o644, Resolve: 8}},
		{Op: abi.OpConnect, Connect: abi.ConnectData{Family: 10, Port: 443, Addr: [16]byte{0x20, 1, 0xd, 0xb8, 15: 1}}},
	}
	for _, r := range reqs {
		if got := RequestFromCtx(r.Ctx(bo), bo); got != r {
			t.Errorf("RequestFromCtx(%v ctx) = %+v, want %+v", r.Op, got, r)
		}
	}
	// On 7.0 CONNECT carries no data: the evaluator sees zeros.
	r := reqs[3]
	if got := RequestFromCtx(r.CtxFor(bo, abi.Version{Major: 7, Minor: 0}), bo); got.Connect != (abi.ConnectData{}) {
		t.Errorf("CONNECT on 7.0: %+v, want no data", got.Connect)
	}
}
