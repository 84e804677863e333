package escape

import (
	"os"
	"runtime"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
	"github.com/ringfence/ringfence/kernel"
	"github.com/ringfence/ringfence/seccomp"
)

// forgeFilter is a seccomp filter (x86-64) a launcher installs to lie to
// ringfence about the task's state. Ring-less registrations of task
// restrictions (io_uring_register opcode 11) "succeed" without reaching
// the kernel (SECCOMP_RET_ERRNO with errno 0), and the incomplete
// restriction registration kernel.TaskRestricted asks with (argument
// NULL) answers EPERM, "already restricted". By mode, it also fakes:
// "all", the registration of task filters (37); "restrictions+seccomp",
// the installation of seccomp filters (prctl PR_SET_SECCOMP), such as
// ringfence's companion filter; "restrictions+nnp", setting no_new_privs
// (prctl PR_SET_NO_NEW_PRIVS); "restrictions", nothing more. Everything
// else is allowed.
func forgeFilter(mode string) []cbpf.Instruction {
	const (
		allow        = 0x7fff0000
		errno        = 0x00050000
		sysPrctl     = 157 // x86-64
		prSetSeccomp = 22
		prSetNNP     = 38
	)
	filterOp, seccompRet, nnpRet := uint32(0xffffffff), uint32(allow), uint32(allow)
	switch mode {
	case "all":
		filterOp = abi.RegisterBPFFilter
	case "restrictions+seccomp":
		seccompRet = errno // errno 0: "installed"
	case "restrictions+nnp":
		nnpRet = errno // errno 0: "set"
	}
	return []cbpf.Instruction{
		cbpf.LoadAbs(0), // nr
		cbpf.JumpIf(cbpf.JmpJEQ, sysPrctl, 0, 5),
		cbpf.LoadAbs(16), // option, low word
		cbpf.JumpIf(cbpf.JmpJEQ, prSetSeccomp, 0, 1),
		cbpf.Ret(seccompRet),
		cbpf.JumpIf(cbpf.JmpJEQ, prSetNNP, 0, 11),
		cbpf.Ret(nnpRet),
		cbpf.JumpIf(cbpf.JmpJEQ, seccomp.SysIOURingRegister, 0, 9),
		cbpf.LoadAbs(16), // fd, low word
		cbpf.JumpIf(cbpf.JmpJEQ, 0xffffffff, 0, 7),
		cbpf.LoadAbs(24), // opcode, low word
		cbpf.JumpIf(cbpf.JmpJEQ, filterOp, 4, 0),
		cbpf.JumpIf(cbpf.JmpJEQ, abi.RegisterRestrictions, 0, 4),
		cbpf.LoadAbs(32), // argument, low word
		cbpf.JumpIf(cbpf.JmpJEQ, 0, 0, 1),
		cbpf.Ret(errno | 1), // EPERM: "already restricted"
		cbpf.Ret(errno),     // errno 0: "registered"
		cbpf.Ret(allow),
	}
}

// roleForgeLaunch is a launcher that installs forgeFilter (args[0] its
// mode) and execs
// "ringfence run ARGS[2:] -- <self> role ROLE" (args[1]: ROLE).
func roleForgeLaunch(args []string) int {
	if len(args) < 2 {
		return brokenf("forge-launch: want all|restrictions ROLE RUN-ARGS..., got %q", args)
	}
	runtime.LockOSThread()
	self, err := os.Executable()
	if err != nil {
		return brokenf("%v", err)
	}
	if err := kernel.InstallSeccomp(forgeFilter(args[0])); err != nil {
		return brokenf("%v", err)
	}
	argv := append([]string{self, "ringfence", "run"}, args[2:]...)
	argv = append(argv, "--", self, "role", args[1])
	return brokenf("exec: %v", kernel.Exec(self, argv, os.Environ()))
}

// roleForgeWorks shows that forgeFilter lies: under it the task seems
// restricted and a filter that denies NOP seems registered, yet a NOP on
// a new ring runs (escaped: the forgery works).
func roleForgeWorks([]string) int {
	runtime.LockOSThread()
	if err := kernel.SetNoNewPrivs(); err != nil {
		return brokenf("%v", err)
	}
	if err := kernel.InstallSeccomp(forgeFilter("all")); err != nil {
		return brokenf("%v", err)
	}
	if restricted, err := kernel.TaskRestricted(); err != nil || !restricted {
		return brokenf("TaskRestricted under the forging filter: %v, %v", restricted, err)
	}
	if err := kernel.RegisterTaskFilter(abi.OpNop, []cbpf.Instruction{cbpf.Ret(0)}, 0, 0); err != nil {
		return brokenf("the forged registration failed: %v", err)
	}
	r, err := kernel.NewRing(kernel.Params{Entries: 1})
	if err != nil {
		return brokenf("%v", err)
	}
	defer r.Close()
	c, err := r.Do(kernel.SQE{Opcode: abi.OpNop})
	if err != nil {
		return brokenf("%v", err)
	}
	if c.Res == 0 {
		return escapedf("TaskRestricted says restricted and a NOP filter was \"registered\", yet NOP ran")
	}
	return held
}
