package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// simulate runs prog on a seccomp_data, for the instructions Build emits
// (ld abs, and k, jeq k, ret k). The kernel's own run is in the VM test.
func simulate(t *testing.T, prog []cbpf.Instruction, nr int32, arch uint32, args [6]uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], uint32(nr))
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Op {
		case cbpf.ClassLD | cbpf.SizeW | cbpf.ModeABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case cbpf.ClassALU | cbpf.AluAnd | cbpf.SrcK:
			acc &= in.K
		case cbpf.ClassJMP | cbpf.JmpJEQ | cbpf.SrcK:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case cbpf.ClassJMP | cbpf.JmpJGE | cbpf.SrcK:
			if acc >= in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case cbpf.ClassRET | cbpf.RetK:
			return in.K
		default:
			t.Fatalf("pc %d: instruction %+v not simulated", pc, in)
		}
	}
	t.Fatal("fell off the end")
	return 0
}

func TestConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"AUDIT_ARCH_X86_64", auditArchX86_64, unix.AUDIT_ARCH_X86_64},
		{"AUDIT_ARCH_I386", auditArchI386, unix.AUDIT_ARCH_I386},
		{"AUDIT_ARCH_AARCH64", auditArchAarch64, unix.AUDIT_ARCH_AARCH64},
		{"AUDIT_ARCH_ARM", auditArchARM, unix.AUDIT_ARCH_ARM},
		{"SECCOMP_RET_ALLOW", retAllow, unix.SECCOMP_RET_ALLOW},
		{"SECCOMP_RET_ERRNO", retErrno, unix.SECCOMP_RET_ERRNO},
		{"EPERM", errnoEPERM, uint64(unix.EPERM)},
		{"EACCES", errnoEACCES, uint64(unix.EACCES)},
		{"ENOSYS", errnoENOSYS, uint64(unix.ENOSYS)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, x/sys/unix says %#x", c.name, c.got, c.want)
		}
	}
}

func TestSyscallNumbers(t *testing.T) {
	if SysIOURingRegister != unix.SYS_IO_URING_REGISTER || SysPidfdGetfd != unix.SYS_PIDFD_GETFD {
		t.Errorf("numbers %d %d, x/sys/unix says %d %d", SysIOURingRegister, SysPidfdGetfd, unix.SYS_IO_URING_REGISTER, unix.SYS_PIDFD_GETFD)
	}
}

func TestBuild(t *testing.T) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		eacces = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		x86    = unix.AUDIT_ARCH_X86_64
		i386   = unix.AUDIT_ARCH_I386
		minus1 = 0xffffffff
	)
	type call struct {
		name string
		nr   int32
		arch uint32
		args [6]uint64
	}
	calls := []struct {
		c                call
		deny, allowBlind uint32 // want with DenyRegister set, and without
	}{
		{call{"read", unix.SYS_READ, x86, [6]uint64{}}, allow, allow},
		{call{"pidfd_getfd", SysPidfdGetfd, x86, [6]uint64{3, 4}}, eperm, eperm},
		{call{"pidfd_getfd i386", SysPidfdGetfd, i386, [6]uint64{3, 4}}, eperm, eperm},
		{call{"pidfd_getfd x32", SysPidfdGetfd | x32SyscallBit, x86, [6]uint64{3, 4}}, eperm, eperm},
		{call{"blind send_msg_ring", SysIOURingRegister, x86, [6]uint64{minus1, 31}}, eacces, allow},
		{call{"blind send_msg_ring, fd -1 sign-extended", SysIOURingRegister, x86, [6]uint64{^uint64(0), 31}}, eacces, allow},
		{call{"blind send_msg_ring, registered-ring flag", SysIOURingRegister, x86, [6]uint64{minus1, 31 | 1<<31}}, eacces, allow},
		{call{"blind send_msg_ring, high word set", SysIOURingRegister, x86, [6]uint64{minus1, 31 | 1<<40}}, eacces, allow},
		{call{"blind send_msg_ring i386", SysIOURingRegister, i386, [6]uint64{minus1, 31}}, eacces, allow},
		{call{"send_msg_ring on a ring fd", SysIOURingRegister, x86, [6]uint64{5, 31}}, eacces, allow},
		{call{"sync_cancel on a ring fd", SysIOURingRegister, x86, [6]uint64{5, 24}}, eacces, allow},
		{call{"personality x32", SysIOURingRegister | x32SyscallBit, x86, [6]uint64{5, 9}}, eacces, allow},
		{call{"probe on a ring fd", SysIOURingRegister, x86, [6]uint64{5, 8}}, allow, allow},
		{call{"blind query", SysIOURingRegister, x86, [6]uint64{minus1, 35}}, allow, allow},
		{call{"blind restrictions", SysIOURingRegister, x86, [6]uint64{minus1, 11}}, allow, allow},
		{call{"a newer kernel's operation", SysIOURingRegister, x86, [6]uint64{5, uint64(abi.RegisterOpLast)}}, eacces, allow},
		{call{"a newer kernel's operation, blind, registered-ring flag", SysIOURingRegister, x86, [6]uint64{minus1, uint64(abi.RegisterOpLast) + 20 | 1<<31}}, eacces, allow},
		{call{"the last known operation", SysIOURingRegister, x86, [6]uint64{5, uint64(abi.RegisterOpLast) - 1}}, allow, allow},
		{call{"unknown arch", unix.SYS_READ, 0x12345678, [6]uint64{}}, enosys, enosys},
	}
	for _, deny := range []bool{true, false} {
		var opt Options
		if deny {
			opt.DenyRegister = []abi.RegisterOp{abi.RegOpSyncCancel, abi.RegOpSendMsgRing, 9}
			opt.DenyRegisterFrom = abi.RegisterOpLast
		}
		prog, err := Build("amd64", opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range calls {
			want := tc.deny
			if !deny {
				want = tc.allowBlind
			}
			if got := simulate(t, prog, tc.c.nr, tc.c.arch, tc.c.args); got != want {
				t.Errorf("deny blind %v: %s: got %#x, want %#x", deny, tc.c.name, got, want)
			}
		}
	}
	if _, err := Build("mips", Options{}); err == nil {
		t.Error("Build for mips: no error")
	}
}

// constAction walks prog as the kernel does when it fills its seccomp
// action cache (Linux 5.11+, seccomp_is_const_allow): the system call
// number and architecture are known, everything else is not, and only
// loads of those two, "and k", conditional jumps on k and "ret k" can be
// followed. ok is false when the result depends on something else.
func constAction(prog []cbpf.Instruction, nr int32, arch uint32) (action uint32, ok bool) {
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Op {
		case cbpf.ClassLD | cbpf.SizeW | cbpf.ModeABS:
			switch in.K {
			case offNr:
				acc = uint32(nr)
			case offArch:
				acc = arch
			default:
				return 0, false
			}
		case cbpf.ClassALU | cbpf.AluAnd | cbpf.SrcK:
			acc &= in.K
		case cbpf.ClassJMP | cbpf.JmpJEQ | cbpf.SrcK, cbpf.ClassJMP | cbpf.JmpJGE | cbpf.SrcK:
			taken := acc == in.K
			if in.Op&0xf0 == cbpf.JmpJGE {
				taken = acc >= in.K
			}
			if taken {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case cbpf.ClassRET | cbpf.RetK:
			return in.K, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// The README says the companion filter decides io_uring_enter (and every
// system call but io_uring_register) from the architecture and number
// alone, so the kernel's action cache allows them without running it:
// the filter's cost is then only the slower system call path that any
// seccomp filter brings.
func TestCacheableExceptRegister(t *testing.T) {
	opt := Options{DenyRegister: []abi.RegisterOp{abi.RegOpSendMsgRing}, DenyRegisterFrom: abi.RegisterOpLast}
	for _, goarch := range []string{"amd64", "arm64"} {
		prog, err := Build(goarch, opt)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := archOf(goarch)
		for _, au := range a.audit {
			for nr := int32(0); nr < 1024; nr++ {
				act, ok := constAction(prog, nr, au)
				switch {
				case nr == SysIOURingRegister:
					if ok {
						t.Errorf("%s arch %#x: io_uring_register decided without its arguments (%#x)", goarch, au, act)
					}
				case !ok:
					t.Errorf("%s arch %#x: system call %d depends on more than its number", goarch, au, nr)
				case nr == SysPidfdGetfd:
					if act != retErrno|errnoEPERM {
						t.Errorf("%s arch %#x: pidfd_getfd: %#x, want EPERM", goarch, au, act)
					}
				case act != retAllow:
					t.Errorf("%s arch %#x: system call %d: %#x, want allow", goarch, au, nr, act)
				}
			}
		}
	}
}

func ExampleBuild() {
	prog, err := Build("amd64", Options{DenyRegister: []abi.RegisterOp{abi.RegOpSyncCancel, abi.RegOpSendMsgRing}})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(prog), "instructions")
	// Output: 16 instructions
}
