package kerneltest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
)

// Task filters cannot be removed, so each test runs in a child process
// (see children and TestMain).

func TestTaskFilterNewRingsOnly(t *testing.T) { needFilters(t); runChild(t, "task-deny-nop", "") }
func TestTaskFilterInherited(t *testing.T)    { needFilters(t); runChild(t, "task-inherit", "") }
func TestTaskFilterStack(t *testing.T)        { needFilters(t); runChild(t, "task-stack", "") }
func TestTaskRestrictionsOnce(t *testing.T)   { needFilters(t); runChild(t, "task-restrict-once", "") }
func TestTaskRestrictionsFirst(t *testing.T)  { needFilters(t); runChild(t, "task-restrict-order", "") }
func TestTaskNeedsNoNewPrivs(t *testing.T)    { needFilters(t); runChild(t, "task-no-nnp", "") }
func TestTaskDenyRest(t *testing.T)           { needFilters(t); runChild(t, "task-deny-rest", "") }

// allowBits allows a request when user_data has all bits of m.
func allowBits(m uint32) []cbpf.Instruction {
	return []cbpf.Instruction{
		cbpf.LoadAbs(0),
		cbpf.ALUK(cbpf.AluAnd, m),
		cbpf.JumpIf(cbpf.JmpJEQ, m, 0, 1),
		cbpf.Ret(1),
		cbpf.Ret(0),
	}
}

// checkNops checks which NOP user_data values 0..7 run on r.
func checkNops(r *kernel.Ring, allowed func(ud uint64) bool, what string) error {
	var errs []error
	for ud := uint64(0); ud < 8; ud++ {
		if err := checkAllowed(r, nop(ud), allowed(ud), fmt.Sprintf("%s: NOP user_data %d", what, ud)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func childTaskDenyNop(string) error {
	before, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if restricted, err := kernel.TaskRestricted(); err != nil || restricted {
		return fmt.Errorf("TaskRestricted before any registration = %v, %v; want false", restricted, err)
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, denyAll(), 0, 0); err != nil {
		return err
	}
	if restricted, err := kernel.TaskRestricted(); err != nil || !restricted {
		return fmt.Errorf("TaskRestricted after a task filter = %v, %v; want true", restricted, err)
	}
	after, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	sq, err := kernel.NewRing(kernel.Params{Flags: kernel.SetupSQPoll, SQThreadIdle: 50})
	if err != nil {
		return err
	}
	return errors.Join(
		checkAllowed(before, nop(1), true, "ring created before the task filter"),
		checkAllowed(after, nop(1), false, "ring created after the task filter"),
		checkAllowed(sq, nop(1), false, "SQPOLL ring created after the task filter"),
		checkAllowed(after, sockReq(unix.AF_INET, unix.SOCK_DGRAM), true, "SOCKET (no filter)"),
	)
}

func childTaskInherit(string) error {
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowBits(1), 0, 0); err != nil {
		return err
	}
	if err := startChild("grandchild-probe", ""); err != nil {
		return err
	}
	r, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	// The grandchild's own filter did not reach its parent.
	return checkNops(r, func(ud uint64) bool { return ud&1 != 0 }, "parent after its child added a filter")
}

func childGrandchildProbe(string) error {
	if restricted, err := kernel.TaskRestricted(); err != nil || !restricted {
		return fmt.Errorf("TaskRestricted in a child of a filtered task = %v, %v; want true", restricted, err)
	}
	r, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	if err := checkNops(r, func(ud uint64) bool { return ud&1 != 0 }, "child (inherited filter)"); err != nil {
		return err
	}
	// no_new_privs is inherited too, so the child may add its own.
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowBits(2), 0, 0); err != nil {
		return err
	}
	r2, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	return errors.Join(
		checkNops(r2, func(ud uint64) bool { return ud&3 == 3 }, "child with its own filter added"),
		checkNops(r, func(ud uint64) bool { return ud&1 != 0 }, "child's ring created before its filter"),
	)
}

func childTaskStack(string) error {
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	r0, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowBits(1), 0, 0); err != nil {
		return err
	}
	r1, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowBits(2), 0, 0); err != nil {
		return err
	}
	r2, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	// A ring filter on a ring that copied the task's set changes that ring
	// only.
	if err := r2.RegisterFilter(abi.OpNop, allowBits(4), 0, 0); err != nil {
		return err
	}
	r3, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	v, err := kernel.Version()
	if err != nil {
		return err
	}
	// Linux 7.0 to 7.2 share the task's filter table with the rings it
	// created, so a later task filter reaches a ring created after an
	// earlier one; 7.3 copies on write and leaves that ring alone. Rings
	// created before the task's first filter are never filtered.
	r1Want := func(ud uint64) bool { return ud&1 != 0 }
	if v.Less(abi.Version{Major: 7, Minor: 3}) {
		r1Want = func(ud uint64) bool { return ud&3 == 3 }
	}
	return errors.Join(
		checkNops(r0, func(uint64) bool { return true }, "ring before the filters"),
		checkNops(r1, r1Want, fmt.Sprintf("Linux %v: ring after the first filter, before the second", v)),
		checkNops(r2, func(ud uint64) bool { return ud&7 == 7 }, "ring after both, plus a ring filter"),
		checkNops(r3, func(ud uint64) bool { return ud&3 == 3 }, "ring after both"),
	)
}

func childTaskRestrictOnce(string) error {
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	rs := []abi.Restriction{
		{Op: abi.RestrictSQEOp, Value: uint8(abi.OpNop)},
		{Op: abi.RestrictSQEOp, Value: uint8(abi.OpSocket)},
	}
	if err := kernel.RegisterTaskRestrictions(rs); err != nil {
		return err
	}
	if restricted, err := kernel.TaskRestricted(); err != nil || !restricted {
		return fmt.Errorf("TaskRestricted after task restrictions = %v, %v; want true", restricted, err)
	}
	err := kernel.RegisterTaskRestrictions(rs)
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("second task restrictions: %v, want EPERM", err)
	}
	if !strings.Contains(err.Error(), "once") {
		return fmt.Errorf("second task restrictions: message %q does not explain", err)
	}
	r, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	openReq := kernel.Request{Op: abi.OpOpenat, Open: kernel.OpenArgs{Dir: unix.AT_FDCWD, Path: "/", Flags: unix.O_RDONLY}}
	errs := []error{
		checkAllowed(r, nop(0), true, "NOP allowed by the task restrictions"),
		checkAllowed(r, sockReq(unix.AF_INET, unix.SOCK_DGRAM), true, "SOCKET allowed by the task restrictions"),
		checkAllowed(r, openReq, false, "OPENAT outside the task restrictions"),
	}
	// Filters can still be added after restrictions.
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowBits(1), 0, 0); err != nil {
		return err
	}
	r2, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	errs = append(errs,
		checkNops(r2, func(ud uint64) bool { return ud&1 != 0 }, "filter after restrictions"),
		checkAllowed(r2, openReq, false, "OPENAT still outside the restrictions"))
	return errors.Join(errs...)
}

func childTaskRestrictOrder(string) error {
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowAll(), 0, 0); err != nil {
		return err
	}
	err := kernel.RegisterTaskRestrictions([]abi.Restriction{{Op: abi.RestrictSQEOp, Value: uint8(abi.OpNop)}})
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("task restrictions after a task filter: %v, want EPERM", err)
	}
	return nil
}

// dropSysAdmin removes CAP_SYS_ADMIN from the calling thread's effective
// capabilities.
func dropSysAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %v", err)
	}
	data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %v", err)
	}
	return nil
}

func childTaskNoNNP(string) error {
	if nnp, err := kernel.NoNewPrivs(); err != nil || nnp {
		return fmt.Errorf("no_new_privs at start = %v, %v; the test needs it unset", nnp, err)
	}
	if err := dropSysAdmin(); err != nil {
		return err
	}
	err := kernel.RegisterTaskFilter(abi.OpNop, allowAll(), 0, 0)
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "no_new_privs") {
		return fmt.Errorf("task filter without no_new_privs or CAP_SYS_ADMIN: %v, want EACCES explaining no_new_privs", err)
	}
	if err := kernel.RegisterTaskRestrictions(nil); !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("task restrictions without no_new_privs: %v, want EACCES", err)
	}
	if restricted, err := kernel.TaskRestricted(); err != nil || restricted {
		return fmt.Errorf("TaskRestricted without no_new_privs = %v, %v; want false", restricted, err)
	}
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if nnp, err := kernel.NoNewPrivs(); err != nil || !nnp {
		return fmt.Errorf("NoNewPrivs after SetNoNewPrivs = %v, %v", nnp, err)
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowAll(), 0, 0); err != nil {
		return fmt.Errorf("task filter with no_new_privs: %v", err)
	}
	return nil
}

func childTaskDenyRest(string) error {
	if err := kernel.SetNoNewPrivs(); err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, allowAll(), abi.FilterDenyRest, 0); err != nil {
		return err
	}
	r, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	if err := kernel.RegisterTaskFilter(abi.OpSocket, allowAll(), 0, abi.PDUSizeSocket); err != nil {
		return err
	}
	r2, err := kernel.NewRing(kernel.Params{})
	if err != nil {
		return err
	}
	return errors.Join(
		checkAllowed(r, nop(0), true, "NOP with its allow filter"),
		checkAllowed(r, sockReq(unix.AF_INET, unix.SOCK_DGRAM), false, "SOCKET denied by DENY_REST"),
		checkAllowed(r2, sockReq(unix.AF_INET, unix.SOCK_DGRAM), false, "SOCKET after a later task allow filter"),
		checkAllowed(r2, nop(0), true, "NOP on the later ring"),
	)
}
