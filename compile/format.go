package compile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/format"
	"strings"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/asm"
)

// Formats returns the names Plan.Format accepts.
func Formats() []string { return []string{"text", "json", "c", "go"} }

// Format renders the plan in one of Formats: "text" (assembly per
// registration, which asm.Assemble reads back), "json", "c" (arrays of
// struct sock_filter and struct io_uring_bpf_filter initialisers) or "go"
// (a gofmt-ed Go file declaring the programs as []cbpf.Instruction).
func (p *Plan) Format(name string) ([]byte, error) {
	switch name {
	case "text":
		return []byte(p.Text()), nil
	case "json":
		return p.JSON()
	case "c":
		return []byte(p.C()), nil
	case "go":
		return p.Go()
	}
	return nil, fmt.Errorf("unknown format %q; want one of %s", name, strings.Join(Formats(), ", "))
}

// flagNames returns a registration's flags as C names.
func flagNames(f uint32) string {
	var s []string
	if f&abi.FilterDenyRest != 0 {
		s = append(s, "IO_URING_BPF_FILTER_DENY_REST")
	}
	if f&abi.FilterSzStrict != 0 {
		s = append(s, "IO_URING_BPF_FILTER_SZ_STRICT")
	}
	if rest := f &^ abi.FilterFlagsMask; rest != 0 {
		s = append(s, fmt.Sprintf("%#x", rest))
	}
	if len(s) == 0 {
		return "0"
	}
	return strings.Join(s, "|")
}

// Text returns the plan as commented assembly, one section per
// registration, in registration order.
func (p *Plan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "; ringfence plan for Linux %v, %s: %d registrations, %d instructions\n",
		p.Kernel, orderName(p.ByteOrder), len(p.Registrations), p.Instructions())
	if p.Restrictions != nil {
		fmt.Fprintf(&b, "; task restrictions, registered first: %s\n", p.Restrictions)
	}
	if p.DenyNewOpcodes {
		fmt.Fprintf(&b, "; opcodes from %d up to the running kernel's last: denied when applied, after these (ret #0 each, until the kernel refuses one with EINVAL)\n", abi.OpLast)
	}
	for i, r := range p.Registrations {
		info, _ := r.Op.Info()
		fmt.Fprintf(&b, "\n; registration %d: %s\n", i+1, r.Comment)
		fmt.Fprintf(&b, "; opcode %s (%d), flags %s, pdu_size %d, %d instructions\n",
			info.KernelName(), r.Op, flagNames(r.Flags), r.PDUSize, r.Prog.Len())
		b.WriteString(asm.Disassemble(r.Prog.Instructions(), asm.Options{ByteOrder: p.ByteOrder, View: info.View}))
	}
	return b.String()
}

// Instructions returns the number of instructions of all registrations.
func (p *Plan) Instructions() int {
	n := 0
	for _, r := range p.Registrations {
		n += r.Prog.Len()
	}
	return n
}

func orderName(bo binary.ByteOrder) string {
	if bo != nil && isBig(bo) {
		return "big-endian"
	}
	return "little-endian"
}

// jsonInsn is one instruction in the JSON format.
type jsonInsn struct {
	Code uint16 `json:"code"`
	Jt   uint8  `json:"jt"`
	Jf   uint8  `json:"jf"`
	K    uint32 `json:"k"`
}

type jsonReg struct {
	Opcode  uint8      `json:"opcode"`
	Op      string     `json:"op"`
	Flags   uint32     `json:"flags"`
	PDUSize uint8      `json:"pdu_size"`
	Comment string     `json:"comment"`
	Rules   []int      `json:"rules"`
	Program []jsonInsn `json:"program"`
}

// jsonRestrictions is the task restriction set in the JSON format.
type jsonRestrictions struct {
	RegisterOps      []string `json:"register_ops"`
	SQEOps           []string `json:"sqe_ops"`
	SQEFlagsAllowed  uint8    `json:"sqe_flags_allowed"`
	SQEFlagsRequired uint8    `json:"sqe_flags_required"`
}

type jsonPlan struct {
	Kernel          string            `json:"kernel"`
	ByteOrder       string            `json:"byte_order"`
	Restrictions    *jsonRestrictions `json:"restrictions,omitempty"`
	DenyOpcodesFrom int               `json:"deny_opcodes_from,omitempty"`
	Registrations   []jsonReg         `json:"registrations"`
}

// JSON returns the plan as indented JSON: kernel, byte_order, the task
// restrictions (when the policy has a register section: the allowed
// register operations and SQE opcodes by name, and the SQE flag masks),
// deny_opcodes_from (when Plan.DenyNewOpcodes: the first opcode to deny
// with a "ret #0" filter after the registrations, and each one after it
// until the kernel refuses one with EINVAL), and the registrations in
// order, each with its raw program (code, jt, jf, k) and the 0-based
// indexes of the rules it enforces.
func (p *Plan) JSON() ([]byte, error) {
	jp := jsonPlan{Kernel: p.Kernel.String(), ByteOrder: orderName(p.ByteOrder)}
	if p.DenyNewOpcodes {
		jp.DenyOpcodesFrom = abi.OpLast
	}
	if r := p.Restrictions; r != nil {
		jp.Restrictions = &jsonRestrictions{
			RegisterOps:      allowedNames[abi.RegisterOp](r.RegisterOps[:]),
			SQEOps:           allowedNames[abi.Opcode](r.SQEOps[:]),
			SQEFlagsAllowed:  r.SQEFlagsAllowed,
			SQEFlagsRequired: r.SQEFlagsRequired,
		}
	}
	for _, r := range p.Registrations {
		jr := jsonReg{Opcode: uint8(r.Op), Op: r.Op.String(), Flags: r.Flags, PDUSize: r.PDUSize, Comment: r.Comment, Rules: r.Rules}
		if jr.Rules == nil {
			jr.Rules = []int{}
		}
		for _, in := range r.Prog.Instructions() {
			jr.Program = append(jr.Program, jsonInsn{in.Op, in.Jt, in.Jf, in.K})
		}
		jp.Registrations = append(jp.Registrations, jr)
	}
	out, err := json.MarshalIndent(jp, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// cName returns a C identifier for registration i.
func cName(i int, r Registration) string {
	return fmt.Sprintf("ringfence_%d_%s", i+1, strings.ToLower(r.Op.String()))
}

// C returns the plan as C: one struct sock_filter array per registration
// and an array of struct io_uring_bpf_filter to register in order (fill in
// filter_ptr from the matching sock_filter array, as the comment says).
func (p *Plan) C() string {
	var b strings.Builder
	fmt.Fprintf(&b, "/* ringfence plan for Linux %v, %s. Register in order with\n", p.Kernel, orderName(p.ByteOrder))
	b.WriteString(" * io_uring_register(fd, IORING_REGISTER_BPF_FILTER, &bpf, 1). */\n")
	b.WriteString("#include <linux/filter.h>\n#include <linux/io_uring.h>\n\n")
	if p.DenyNewOpcodes {
		b.WriteString("/* Then deny the opcodes the kernel has beyond ringfence's table: register\n")
		b.WriteString(" * { BPF_RET | BPF_K, 0, 0, 0 } for each opcode from RINGFENCE_DENY_OPCODES_FROM\n")
		b.WriteString(" * on, until the kernel refuses one with EINVAL (its IORING_OP_LAST). */\n")
		fmt.Fprintf(&b, "#define RINGFENCE_DENY_OPCODES_FROM %d\n\n", abi.OpLast)
	}
	for i, r := range p.Registrations {
		fmt.Fprintf(&b, "/* %s */\nstatic struct sock_filter %s[] = {\n", r.Comment, cName(i, r))
		for _, in := range r.Prog.Instructions() {
			fmt.Fprintf(&b, "\t{ %#04x, %d, %d, %#08x },\n", in.Op, in.Jt, in.Jf, in.K)
		}
		b.WriteString("};\n\n")
	}
	b.WriteString("static struct io_uring_bpf_filter ringfence_plan[] = {\n")
	for i, r := range p.Registrations {
		info, _ := r.Op.Info()
		fmt.Fprintf(&b, "\t{ .opcode = %s, .flags = %s, .filter_len = %d, .pdu_size = %d,\n\t  .filter_ptr = (__u64)(unsigned long)%s },\n",
			info.KernelName(), flagNames(r.Flags), r.Prog.Len(), r.PDUSize, cName(i, r))
	}
	b.WriteString("};\n")
	return b.String()
}

// Go returns the plan as a Go source file (package ringfenceplan) that
// declares the registrations with their programs as []cbpf.Instruction.
func (p *Plan) Go() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by ringfence compile; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "// Package ringfenceplan holds a ringfence plan for Linux %v, %s.\npackage ringfenceplan\n\n", p.Kernel, orderName(p.ByteOrder))
	b.WriteString("import \"github.com/ringfence/ringfence/cbpf\"\n\n")
	b.WriteString("// Registration is one IORING_REGISTER_BPF_FILTER call.\n")
	b.WriteString("type Registration struct {\n\tOpcode uint8\n\tFlags uint32\n\tPDUSize uint8\n\tProgram []cbpf.Instruction\n}\n\n")
	deny := 0
	if p.DenyNewOpcodes {
		deny = abi.OpLast
	}
	b.WriteString("// DenyOpcodesFrom, when not 0, is the first opcode to deny after the\n")
	b.WriteString("// registrations: register a filter returning 0 for it and each opcode\n")
	b.WriteString("// after it, until the kernel refuses one with EINVAL.\n")
	fmt.Fprintf(&b, "const DenyOpcodesFrom = %d\n\n", deny)
	b.WriteString("// Plan lists the registrations to make, in order.\nvar Plan = []Registration{\n")
	for _, r := range p.Registrations {
		fmt.Fprintf(&b, "// %s\n{Opcode: %d, Flags: %d, PDUSize: %d, Program: []cbpf.Instruction{\n", r.Comment, r.Op, r.Flags, r.PDUSize)
		for _, in := range r.Prog.Instructions() {
			fmt.Fprintf(&b, "{Op: %#04x, Jt: %d, Jf: %d, K: %#x},\n", in.Op, in.Jt, in.Jf, in.K)
		}
		b.WriteString("}},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
