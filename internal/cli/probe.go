package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// probeReport is what "ringfence probe" finds. Its JSON form is stable.
type probeReport struct {
	Release          string   `json:"release"`
	Version          string   `json:"version"`
	RingFilters      bool     `json:"ring_filters"`
	TaskFilters      bool     `json:"task_filters"`
	TaskRestrictions bool     `json:"task_restrictions"`
	Why              string   `json:"why,omitempty"` // why filters are missing
	PDUSizes         []opPDU  `json:"pdu_sizes,omitempty"`
	LastOp           *opName  `json:"last_op,omitempty"`
	Supported        []string `json:"supported_ops,omitempty"`
	Unsupported      []string `json:"unsupported_ops,omitempty"`
	NoNewPrivs       string   `json:"no_new_privs"`  // "yes", "no" or "unknown: why"
	TaskFiltered     string   `json:"task_filtered"` // "yes", "no" or "unknown: why"
	// ExecKeepsFilters: "yes", "no: why" (the kernel drops task filters
	// at execve once a thread used io_uring; run refuses it) or
	// "unknown: why"; empty without filters.
	ExecKeepsFilters string `json:"exec_keeps_filters,omitempty"`
	// PtraceScope is Yama's kernel.yama.ptrace_scope, "none" without
	// Yama, or "unknown: why".
	PtraceScope string   `json:"ptrace_scope"`
	Warnings    []string `json:"warnings,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

type opPDU struct {
	Op      string `json:"op"`
	PDUSize uint8  `json:"pdu_size"`
}

type opName struct {
	Op   int    `json:"op"`
	Name string `json:"name"`
}

// probeCommand is "ringfence probe".
func probeCommand() *command {
	return &command{
		name:    "probe",
		summary: "report what the running kernel supports for io_uring filters",
		help: `Reports what the running kernel supports for io_uring policies: BPF filters
on rings and on tasks, task restrictions, each opcode's pdu_size (the bytes
of per-opcode data filters see, read back from the kernel's EMSGSIZE
answer), the opcodes the kernel supports (IORING_REGISTER_PROBE), whether
no_new_privs is set, whether this process is already under io_uring task
filters or restrictions, whether the kernel keeps task filters across execve
after a thread used io_uring (found by behaviour in a throwaway child; Linux
7.0 without the fix "io_uring: preserve task restrictions across exec" does
not, and run refuses it), and Yama's ptrace scope (at 0, or without Yama, a
confined program may take over other processes of its user). Nothing is
registered in this process: probing changes nothing.

Exit status: 0 when the kernel has io_uring BPF filters, 1 when it does not,
2 for bad usage.`,
		setup: func(fs *flag.FlagSet) action {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				r := probeKernel()
				if *asJSON {
					b, err := json.MarshalIndent(r, "", "  ")
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%s\n", b)
				} else {
					printProbe(e.stdout, r)
				}
				if !r.RingFilters {
					return exitStatus(exitDenied)
				}
				return nil
			}
		},
	}
}

// probeKernel asks the running kernel. It registers nothing.
func probeKernel() probeReport {
	var r probeReport
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	if rel, err := kernel.Release(); err == nil {
		r.Release = rel
	} else {
		r.Errors = append(r.Errors, err.Error())
	}
	if v, err := kernel.Version(); err == nil {
		r.Version = v.String()
	}
	if nnp, err := kernel.NoNewPrivs(); err == nil {
		r.NoNewPrivs = yesNo(nnp)
	} else {
		r.NoNewPrivs = "unknown: " + err.Error()
	}
	if err := kernel.Supported(); err != nil {
		r.Why = err.Error()
	} else {
		r.RingFilters = true
	}
	// Task filters and task restrictions came with ring filters (Linux
	// 7.0); TaskRestricted asks the task-restriction path with an
	// argument the kernel refuses without changing anything, so its
	// answer (EPERM: restricted; EACCES or EINVAL after the checks: not)
	// shows the path exists.
	restricted, err := kernel.TaskRestricted()
	switch {
	case err == nil:
		r.TaskFiltered = yesNo(restricted)
		r.TaskRestrictions = r.RingFilters
		r.TaskFilters = r.RingFilters
	case errors.Is(err, kernel.ErrNoFilters):
		r.TaskFiltered = "no (this kernel has no task filters)"
	default:
		r.TaskFiltered = "unknown: " + err.Error()
	}
	if r.RingFilters {
		switch err := ringfence.ExecKeepsFilters(); {
		case err == nil:
			r.ExecKeepsFilters = "yes"
		case errors.Is(err, ringfence.ErrExecDropsFilters):
			r.ExecKeepsFilters = "no: " + err.Error()
			r.Warnings = append(r.Warnings, "ringfence run refuses this kernel: "+err.Error())
		default:
			r.ExecKeepsFilters = "unknown: " + err.Error()
		}
	}
	switch scope, err := kernel.PtraceScope(); {
	case err != nil:
		r.PtraceScope = "unknown: " + err.Error()
	case scope < 0:
		r.PtraceScope = "none"
	default:
		r.PtraceScope = fmt.Sprint(scope)
	}
	if w := kernel.PtraceWarning(); w != "" {
		r.Warnings = append(r.Warnings, w)
	}
	if r.RingFilters {
		sizes, err := kernel.PDUSizes()
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		} else {
			for op, s := range sizes {
				r.PDUSizes = append(r.PDUSizes, opPDU{Op: abi.Opcode(op).String(), PDUSize: s})
			}
		}
	}
	if p, err := kernel.ProbeOpcodes(); err == nil {
		r.LastOp = &opName{Op: int(p.LastOp), Name: p.LastOp.String()}
		for op := 0; op <= int(p.LastOp) && op < 256; op++ {
			if p.Has(abi.Opcode(op)) {
				r.Supported = append(r.Supported, abi.Opcode(op).String())
			} else {
				r.Unsupported = append(r.Unsupported, abi.Opcode(op).String())
			}
		}
	} else {
		r.Errors = append(r.Errors, err.Error())
	}
	return r
}

func printProbe(w io.Writer, r probeReport) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "kernel             %s (%s)\n", r.Release, r.Version)
	fmt.Fprintf(w, "filters on rings   %s\n", yes(r.RingFilters))
	fmt.Fprintf(w, "filters on tasks   %s\n", yes(r.TaskFilters))
	fmt.Fprintf(w, "task restrictions  %s\n", yes(r.TaskRestrictions))
	if r.Why != "" {
		fmt.Fprintf(w, "why not            %s\n", r.Why)
	}
	fmt.Fprintf(w, "no_new_privs       %s\n", r.NoNewPrivs)
	fmt.Fprintf(w, "task filtered      %s\n", r.TaskFiltered)
	if r.ExecKeepsFilters != "" {
		fmt.Fprintf(w, "exec keeps filters %s\n", r.ExecKeepsFilters)
	}
	fmt.Fprintf(w, "ptrace scope       %s\n", r.PtraceScope)
	if len(r.PDUSizes) > 0 {
		var with []string
		for _, p := range r.PDUSizes {
			if p.PDUSize != 0 {
				with = append(with, fmt.Sprintf("%s %d", p.Op, p.PDUSize))
			}
		}
		fmt.Fprintf(w, "pdu_size           %s; every other opcode 0\n", strings.Join(with, ", "))
	}
	if r.LastOp != nil {
		fmt.Fprintf(w, "opcodes            %d supported, up to %s (%d)\n", len(r.Supported), r.LastOp.Name, r.LastOp.Op)
		if len(r.Unsupported) > 0 {
			fmt.Fprintf(w, "not supported      %s\n", strings.Join(r.Unsupported, " "))
		}
	}
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "warning            %s\n", m)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error              %s\n", e)
	}
}
