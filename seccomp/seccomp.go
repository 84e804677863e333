// Package seccomp builds ringfence's companion seccomp filter: a small
// classic-BPF program over struct seccomp_data that "ringfence run" installs
// next to the io_uring policy (no_new_privs is set anyway). It closes what
// io_uring filters and task restrictions cannot see:
//
//   - pidfd_getfd(2), with which a confined program that may ptrace a
//     same-user unconfined process takes that process's io_uring
//     descriptor and submits on a ring no policy filters (EPERM);
//   - io_uring_register operations the policy's register section does not
//     allow (EACCES), on any descriptor and ring-less (fd -1): Linux 7.0
//     to 7.2 do not check the ring-less IORING_REGISTER_SEND_MSG_RING
//     against task restrictions, and a task that already has a restriction
//     set (a nested ringfence run) cannot take the policy's own.
//
// The package only builds programs; package kernel installs them.
package seccomp

import (
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/cbpf"
)

// System call numbers the filter tests. Both were added after Linux 5.1,
// when every architecture took the same numbers for new system calls, so
// they are the same for every ABI a 64-bit process can call (x86-64, its
// i386 and x32 forms; arm64 and its 32-bit arm form).
const (
	SysIOURingRegister = 427
	SysPidfdGetfd      = 438
)

// Linux constants (linux/audit.h, linux/seccomp.h, asm-generic/errno*.h),
// written here so that package kernel stays the only user of x/sys/unix;
// the tests compare them with it.
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAarch64 = 0xc00000b7
	auditArchARM     = 0x40000028
	retAllow         = 0x7fff0000 // SECCOMP_RET_ALLOW
	retErrno         = 0x00050000 // SECCOMP_RET_ERRNO
	errnoEPERM       = 1
	errnoEACCES      = 13
	errnoENOSYS      = 38
)

// x32SyscallBit is __X32_SYSCALL_BIT: x32 system calls on x86-64 carry it
// in their number.
const x32SyscallBit = 0x40000000

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Options choose what the companion filter refuses beyond pidfd_getfd.
type Options struct {
	// DenyRegister are the io_uring_register opcodes refused with
	// EACCES, on any descriptor and with or without
	// IORING_REGISTER_USE_REGISTERED_RING.
	DenyRegister []abi.RegisterOp
	// DenyRegisterFrom, if not 0, also refuses with EACCES every
	// io_uring_register opcode from it on: the operations of kernels
	// newer than this package, which a register allow list cannot name
	// and so does not allow.
	DenyRegisterFrom abi.RegisterOp
}

// arch describes the audit architectures a Go architecture's processes can
// make system calls with, and the byte order of seccomp_data's arguments.
type arch struct {
	audit    []uint32
	x32      bool // mask the x32 bit off the system call number
	lowFirst bool // the low word of a 64-bit argument comes first
}

func archOf(goarch string) (arch, error) {
	switch goarch {
	case "amd64":
		return arch{audit: []uint32{auditArchX86_64, auditArchI386}, x32: true, lowFirst: true}, nil
	case "arm64":
		return arch{audit: []uint32{auditArchAarch64, auditArchARM}, lowFirst: true}, nil
	}
	return arch{}, fmt.Errorf("seccomp: no companion filter for architecture %s (ringfence knows amd64 and arm64)", goarch)
}

// Build returns the companion filter for Go architecture goarch
// (runtime.GOARCH). A system call from an architecture the process cannot
// have (never seen natively) fails with ENOSYS rather than pass unchecked.
func Build(goarch string, opt Options) ([]cbpf.Instruction, error) {
	a, err := archOf(goarch)
	if err != nil {
		return nil, err
	}
	var b builder
	b.add(cbpf.LoadAbs(offArch))
	for _, au := range a.audit {
		b.jeq(au, "known", "")
	}
	b.add(cbpf.Ret(retErrno | errnoENOSYS))
	b.label("known")
	b.add(cbpf.LoadAbs(offNr))
	if a.x32 {
		b.add(cbpf.ALUK(cbpf.AluAnd, ^uint32(x32SyscallBit)))
	}
	b.jeq(SysPidfdGetfd, "eperm", "")
	checkRegister := len(opt.DenyRegister) > 0 || opt.DenyRegisterFrom > 0
	if checkRegister {
		b.jeq(SysIOURingRegister, "register", "")
	}
	b.add(cbpf.Ret(retAllow))
	if checkRegister {
		lo := offArgs + 8
		if !a.lowFirst {
			lo += 4
		}
		b.label("register")
		// The opcode is an unsigned int: only its low word counts.
		b.add(cbpf.LoadAbs(uint32(lo)))
		b.add(cbpf.ALUK(cbpf.AluAnd, ^uint32(abi.RegisterUseRegisteredRing)))
		if opt.DenyRegisterFrom > 0 {
			b.jump(cbpf.JmpJGE, uint32(opt.DenyRegisterFrom), "eacces", "")
		}
		for _, op := range opt.DenyRegister {
			b.jeq(uint32(op), "eacces", "")
		}
		b.add(cbpf.Ret(retAllow))
		b.label("eacces")
		b.add(cbpf.Ret(retErrno | errnoEACCES))
	}
	b.label("eperm")
	b.add(cbpf.Ret(retErrno | errnoEPERM))
	return b.finish()
}

// builder assembles straight-line code with forward jumps to labels.
type builder struct {
	code   []cbpf.Instruction
	jumps  map[int][2]string // pc -> true and false targets ("" = next)
	labels map[string]int
}

func (b *builder) add(in cbpf.Instruction) { b.code = append(b.code, in) }

func (b *builder) jeq(k uint32, jt, jf string) { b.jump(cbpf.JmpJEQ, k, jt, jf) }

// jump compares A with k using op and goes to label jt or jf ("" = next).
func (b *builder) jump(op uint16, k uint32, jt, jf string) {
	if b.jumps == nil {
		b.jumps = map[int][2]string{}
	}
	b.jumps[len(b.code)] = [2]string{jt, jf}
	b.add(cbpf.JumpIf(op, k, 0, 0))
}

func (b *builder) label(name string) {
	if b.labels == nil {
		b.labels = map[string]int{}
	}
	b.labels[name] = len(b.code)
}

func (b *builder) finish() ([]cbpf.Instruction, error) {
	for pc, t := range b.jumps {
		var off [2]uint8
		for i, name := range t {
			if name == "" {
				continue
			}
			at, ok := b.labels[name]
			d := at - pc - 1
			if !ok || d < 0 || d > 255 {
				return nil, fmt.Errorf("seccomp: bad jump from %d to %q", pc, name)
			}
			off[i] = uint8(d)
		}
		b.code[pc].Jt, b.code[pc].Jf = off[0], off[1]
	}
	if err := cbpf.CheckClassic(b.code); err != nil {
		return nil, fmt.Errorf("seccomp: built an invalid program: %w", err)
	}
	return b.code, nil
}
