package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"text/tabwriter"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/compile"
	"github.com/ringfence/ringfence/internal/policygen"
	"github.com/ringfence/ringfence/internal/uringprobe"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/policy"
)

// verifyCase is one request verify submits.
type verifyCase struct {
	Why string         `json:"why"` // where the request comes from: a rule's boundary, an opcode
	Req kernel.Request `json:"req"`
}

// verifyChildInput is what the parent sends a verify child on stdin.
type verifyChildInput struct {
	Policy []byte       `json:"policy,omitempty"` // the policy text; empty for the unfiltered baseline
	Name   string       `json:"name"`
	Cases  []verifyCase `json:"cases"`
}

// verifyChildOutput is the child's answer: one CQE result per case.
type verifyChildOutput struct {
	Res   []int32 `json:"res"`
	Error string  `json:"error,omitempty"`
}

// verifyCommand is "ringfence verify".
func verifyCommand() *command {
	return &command{
		name:    "verify",
		args:    "POLICY",
		summary: "check a policy against the real kernel at its boundaries",
		help: `Checks a policy against the running kernel. In a child process it applies
POLICY to the task and submits real io_uring requests built from the
policy's own boundaries: each allowed and denied value, just inside and just
outside each range and prefix, each opcode the policy names and others it
does not. An unfiltered sibling child submits the same requests first, so a
request that fails with EACCES on its own is not mistaken for a denial. For
each request it compares the kernel's answer with ringfence's predictions:
the reference evaluator (the policy's meaning) and the compiled plan.
POLICY is a file, "-" for standard input, or profile:NAME.

It prints a table (only the differences and a summary unless --all).
With --vm VERSION (e.g. 7.2) the same runs inside that Debian kernel booted
under QEMU by the harness of "ringfence vm".

Exit status: 1 on any difference, 0 when every answer matches, 2 for bad
usage or a kernel without io_uring filters.`,
		setup: func(fs *flag.FlagSet) action {
			vmVersion := fs.String("vm", "", "run inside Debian kernel `VERSION` (7.0 ... 7.3) under QEMU")
			all := fs.Bool("all", false, "print every request, not only the differences")
			return func(e *env, args []string) error {
				if len(args) != 1 {
					return usagef("give one POLICY")
				}
				if *vmVersion != "" {
					return verifyInVM(e, args[0], *vmVersion, *all)
				}
				return verify(e, args[0], *all)
			}
		},
	}
}

// verify checks the policy arg against the running kernel.
func verify(e *env, arg string, all bool) error {
	p, data, name, err := e.loadPolicy(arg)
	if err != nil {
		return err
	}
	if err := kernel.Supported(); err != nil {
		return err
	}
	k, err := kernel.Version()
	if err != nil {
		return err
	}
	plan, err := ringfence.Compile(p, k)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ringfence-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cases := verifyCases(p, dir)
	base, err := verifyChild(verifyChildInput{Name: name, Cases: cases})
	if err != nil {
		return fmt.Errorf("unfiltered baseline: %v", err)
	}
	os.RemoveAll(dir) // files the baseline created must not change the filtered run
	os.MkdirAll(dir, 0o700)
	got, err := verifyChild(verifyChildInput{Policy: data, Name: name, Cases: cases})
	if err != nil {
		return fmt.Errorf("filtered run: %v", err)
	}
	rel, _ := kernel.Release()
	return verifyReport(e.stdout, arg, rel, k, p, plan, cases, base, got, all)
}

// verifyChild runs "ringfence __verify-child" (this same executable) with in
// on its stdin and returns the results.
func verifyChild(in verifyChildInput) ([]int32, error) {
	self, argv, err := selfArgv("__verify-child")
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	c := exec.Command(self, argv[1:]...)
	c.Stdin = bytes.NewReader(b)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	runErr := c.Run()
	var o verifyChildOutput
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		return nil, fmt.Errorf("child: %v; %s", runErr, errb.String())
	}
	if o.Error != "" {
		return nil, errors.New(o.Error)
	}
	if len(o.Res) != len(in.Cases) {
		return nil, fmt.Errorf("child answered %d of %d requests", len(o.Res), len(in.Cases))
	}
	return o.Res, nil
}

// verifyChildCommand is the internal "__verify-child" of verify: it
// applies the policy from standard input (if any) to this task, submits
// the cases, and prints the results.
func verifyChildCommand() *command {
	return &command{
		name:     "__verify-child",
		summary:  "the child process of verify",
		hidden:   true,
		speaksAs: "verify",
		help: `The child process of "ringfence verify": reads the policy and requests as
JSON on standard input, applies the policy (if any) to this task, submits
the requests and prints their results as JSON.

Exit status: 0 answered, 1 failed (the JSON says why).`,
		setup: func(*flag.FlagSet) action {
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("internal command of ringfence verify: no arguments")
				}
				out, err := verifyChildRun(e)
				if err != nil {
					out = verifyChildOutput{Error: err.Error()}
				}
				b, _ := json.Marshal(out)
				fmt.Fprintf(e.stdout, "%s\n", b)
				if err != nil {
					return exitStatus(exitDenied)
				}
				return nil
			}
		},
	}
}

// verifyChildRun is the work of __verify-child.
func verifyChildRun(e *env) (verifyChildOutput, error) {
	var in verifyChildInput
	if err := json.NewDecoder(e.stdin).Decode(&in); err != nil {
		return verifyChildOutput{}, err
	}
	if len(in.Policy) > 0 {
		p, err := ringfence.ParsePolicy(in.Policy, in.Name)
		if err != nil {
			return verifyChildOutput{}, err
		}
		k, err := kernel.Version()
		if err != nil {
			return verifyChildOutput{}, err
		}
		plan, err := ringfence.Compile(p, k)
		if err != nil {
			return verifyChildOutput{}, err
		}
		// The child submits its requests itself and executes nothing:
		// a kernel that drops filters at execve does not matter here.
		if err := ringfence.ApplyToTask(plan, ringfence.ApplyOptions{AllowExecDrop: true}); err != nil {
			return verifyChildOutput{}, err
		}
	}
	ring, err := kernel.NewRing(kernel.Params{Entries: 4})
	if err != nil {
		return verifyChildOutput{}, err
	}
	defer ring.Close()
	out := verifyChildOutput{Res: make([]int32, len(in.Cases))}
	for i, c := range in.Cases {
		sqe := uringprobe.SQE(c.Req)
		cqe, err := uringprobe.Do(ring, []kernel.SQE{sqe}, sqe.UserData)
		if err != nil {
			return verifyChildOutput{}, fmt.Errorf("request %d (%s): %w", i, c.Why, err)
		}
		if cqe.Res >= 0 && (c.Req.Op == abi.OpSocket || c.Req.Op == abi.OpOpenat || c.Req.Op == abi.OpOpenat2) {
			kernel.CloseFD(int(cqe.Res))
		}
		out.Res[i] = cqe.Res
	}
	return out, nil
}

// verdict is how one request was judged.
type verdict struct {
	policyAllow, planAllow bool
	prepOK                 bool
	kernel                 string // "allow", "deny", or "n/a: why"
	ok                     bool
}

func judge(p *policy.Policy, plan *compile.Plan, k abi.Version, c verifyCase, base, got int32) verdict {
	ctx, prepOK := c.Req.Ctx(k)
	v := verdict{prepOK: prepOK}
	v.policyAllow = p.Decide(ringfence.RequestFromCtx(ctx, binary.NativeEndian)).Allow
	v.planAllow = planAllows(plan, ctx)
	eacces := -int32(syscall.EACCES)
	switch {
	case got == eacces && base == eacces:
		v.kernel = "n/a: EACCES on its own"
	case got == eacces:
		v.kernel = "deny"
	case got == base && (!prepOK || isPrepError(base)):
		v.kernel = "n/a: refused before filters"
	default:
		v.kernel = "allow"
	}
	switch v.kernel {
	case "deny":
		v.ok = !v.policyAllow && !v.planAllow
	case "allow":
		v.ok = v.policyAllow && v.planAllow
	default:
		v.ok = v.policyAllow == v.planAllow
	}
	return v
}

// verifyReport prints the table of verify and returns exit status 1 when
// anything differs.
func verifyReport(w io.Writer, src, release string, k abi.Version, p *policy.Policy, plan *compile.Plan, cases []verifyCase, base, got []int32, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	header := false
	diffs, na := 0, 0
	for i, c := range cases {
		v := judge(p, plan, k, c, base[i], got[i])
		if !v.ok {
			diffs++
		}
		if v.kernel != "allow" && v.kernel != "deny" {
			na++
		}
		if all || !v.ok {
			if !header {
				fmt.Fprintln(tw, "#\trequest\tfrom\tpolicy\tplan\tkernel\tresult\tbaseline\t")
				header = true
			}
			mark := ""
			if !v.ok {
				mark = "DIFFERS"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", i+1, describe(c.Req), c.Why,
				allowWord(v.policyAllow), allowWord(v.planAllow), v.kernel, got[i], base[i], mark)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%s on %s (%v): %d requests, %d differences, %d not decidable by the kernel (refused before filters or EACCES on their own)\n",
		src, release, k, len(cases), diffs, na)
	if diffs > 0 {
		return exitStatus(exitDenied)
	}
	return nil
}

func allowWord(b bool) string {
	if b {
		return "allow"
	}
	return "deny"
}

// describe prints a request briefly.
func describe(q kernel.Request) string {
	s := q.Op.String()
	switch q.Op {
	case abi.OpSocket:
		s += fmt.Sprintf(" family=%d type=%#x proto=%d", q.Socket.Domain, q.Socket.Type, q.Socket.Protocol)
	case abi.OpOpenat, abi.OpOpenat2:
		s += fmt.Sprintf(" flags=%#o mode=%#o", q.Open.Flags, q.Open.Mode)
		if q.Op == abi.OpOpenat2 {
			s += fmt.Sprintf(" resolve=%#x", q.Open.Resolve)
		}
	case abi.OpConnect:
		s += fmt.Sprintf(" addr=%x", q.Connect.Addr)
	}
	if q.Flags != 0 {
		s += fmt.Sprintf(" sqe_flags=%#x", q.Flags)
	}
	if q.UserData != 0 {
		s += fmt.Sprintf(" user_data=%#x", q.UserData)
	}
	return s
}

// verifyCases builds the requests for p: per rule, a request meeting every
// condition, then each field moved through the boundary values of the
// rule's conditions on it; and one plain request for every opcode.
// Paths for opens are inside dir.
func verifyCases(p *policy.Policy, dir string) []verifyCase {
	var cases []verifyCase
	seen := map[string]bool{}
	add := func(why string, q kernel.Request) {
		key := fmt.Sprintf("%+v", q)
		if seen[key] {
			return
		}
		seen[key] = true
		cases = append(cases, verifyCase{Why: why, Req: q})
	}
	for op := abi.Opcode(0); op < abi.OpLast; op++ {
		q := baseRequest(op, dir)
		add("opcode "+op.String(), q)
	}
	for ri, rule := range p.Rules {
		for _, op := range rule.Ops {
			base := baseRequest(op, dir)
			// Meet every condition.
			for _, c := range rule.Conds {
				for _, v := range boundaryValues(c) {
					q := withField(base, c.Field, v)
					if c.Eval(policyRequestOf(q)) {
						base = q
						break
					}
				}
			}
			label := rule.Label(ri)
			add(label+" met", base)
			for _, c := range rule.Conds {
				for _, v := range boundaryValues(c) {
					add(fmt.Sprintf("%s %s %v", label, c.Field, c.Op), withField(base, c.Field, v))
				}
			}
		}
	}
	return cases
}

// policyRequestOf is the request the evaluator sees for q, ignoring what
// the kernel's preparation changes (used only to build cases).
func policyRequestOf(q kernel.Request) policy.Request {
	r := policy.Request{Op: q.Op, UserData: q.UserData, SQEFlags: q.Flags}
	r.Socket = abi.SocketData{Family: q.Socket.Domain, Type: q.Socket.Type, Protocol: q.Socket.Protocol}
	r.Open = abi.OpenData{Flags: q.Open.Flags, Mode: q.Open.Mode, Resolve: q.Open.Resolve}
	if a := q.Connect.Addr; len(a) >= 8 {
		r.Connect.Family = uint32(binary.NativeEndian.Uint16(a[0:]))
		r.Connect.Port = binary.BigEndian.Uint16(a[2:])
		if r.Connect.Family == policy.AFInet6 && len(a) >= 24 {
			copy(r.Connect.Addr[:], a[8:24])
		} else {
			copy(r.Connect.Addr[:4], a[4:8])
		}
	}
	return r
}

// baseRequest is an ordinary request for op; opens use a path in dir.
func baseRequest(op abi.Opcode, dir string) kernel.Request {
	q := uringprobe.Request(op)
	if op == abi.OpOpenat || op == abi.OpOpenat2 {
		q.Open.Path = dir + "/f"
	}
	return q
}

// withField returns q with a policy field set to v (addresses: an IPv4 or
// IPv6 address in the low bytes, see boundaryValues).
func withField(q kernel.Request, field string, v fieldValue) kernel.Request {
	switch field {
	case "user_data":
		q.UserData = v.n
	case "sqe_flags":
		// Only flags that change nothing about how a single request
		// completes: IO_LINK would chain it to the next case,
		// CQE_SKIP_SUCCESS would hide its completion, FIXED_FILE and
		// BUFFER_SELECT need registered resources.
		q.Flags = uint8(v.n) & (abi.IOSQEAsync | abi.IOSQEIODrain)
	case "socket.family":
		q.Socket.Domain = uint32(v.n)
	case "socket.type":
		q.Socket.Type = uint32(v.n)
	case "socket.protocol":
		q.Socket.Protocol = uint32(v.n)
	case "open.flags":
		q.Open.Flags = v.n
	case "open.mode":
		q.Open.Mode = v.n
	case "open.resolve":
		q.Open.Resolve = v.n
	case "connect.family", "connect.port", "connect.addr":
		r := policyRequestOf(q)
		fam, port, addr := r.Connect.Family, r.Connect.Port, r.Connect.Addr
		switch field {
		case "connect.family":
			fam = uint32(v.n)
		case "connect.port":
			port = uint16(v.n)
		case "connect.addr":
			if v.addr.Is4() {
				fam = policy.AFInet
				a := v.addr.As4()
				addr = [16]byte{}
				copy(addr[:], a[:])
			} else {
				fam = policy.AFInet6
				addr = v.addr.As16()
			}
		}
		if fam == policy.AFInet6 {
			q.Connect.Addr = kernel.SockaddrInet6(port, addr)
			q.Connect.AddrLen = 28
		} else {
			q.Connect.Addr = kernel.SockaddrInet4(port, [4]byte(addr[:4]))
			binary.NativeEndian.PutUint16(q.Connect.Addr[0:], uint16(fam))
			q.Connect.AddrLen = 16
		}
	}
	return q
}

// fieldValue is a number, or an address for connect.addr.
type fieldValue struct {
	n    uint64
	addr netip.Addr
}

// boundaryValues returns the values at the edges of condition c
// (policygen.Boundaries, policygen.AddrBoundaries), leaving out values with
// bits normalisation ignores: the kernel shows them or not depending on
// the release, and the evaluator ignores them anyway.
func boundaryValues(c policy.Cond) []fieldValue {
	spec, _ := policy.LookupField(c.Field)
	var out []fieldValue
	if spec.IsAddr() {
		for _, a := range policygen.AddrBoundaries(c) {
			out = append(out, fieldValue{addr: a})
		}
		return out
	}
	for _, v := range policygen.Boundaries(c) {
		if v&spec.Ignore == 0 {
			out = append(out, fieldValue{n: v})
		}
	}
	return out
}

// planAllows is how the kernel would judge ctx under plan.
func planAllows(plan *compile.Plan, ctx abi.Ctx) bool { return plan.Decide(ctx).Allow }

// isPrepError reports whether res is an error a request typically gets
// from its preparation, which runs before any filter (bad arguments, an
// unreadable pointer, a size out of range). A request that fails with one
// of them both unfiltered and filtered was, as far as anyone can tell from
// outside, never seen by the filter, so its result says nothing about the
// policy; verify and the kernel tests report such requests apart.
func isPrepError(res int32) bool {
	switch syscall.Errno(-res) {
	case syscall.EINVAL, syscall.EFAULT, syscall.EOPNOTSUPP, syscall.E2BIG:
		return res < 0
	}
	return false
}
