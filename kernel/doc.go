// Package kernel is ringfence's interface to the running Linux kernel: the
// io_uring system calls that register classic-BPF filters and restrictions
// on a ring or on the calling task, the probes that discover what the
// kernel supports (filters, each opcode's pdu_size, the opcodes), the
// no_new_privs bit, and a small io_uring ring that submits NOP, SOCKET,
// OPENAT, OPENAT2, CONNECT or any raw request and reads the completions.
//
// It is the only ringfence package that makes system calls (through
// golang.org/x/sys/unix, in the files built for Linux). Every failure is an
// *Error that names the call, wraps the errno (errors.Is(err,
// unix.EACCES) works) and says what to do. On other systems the package
// builds, with its types and Request.Ctx, but every call fails with
// ErrNeedsLinux, so that ringfence's pure commands (check, compile,
// explain, test, asm, disasm, emu) work on macOS and Windows.
//
// # Threads
//
// Linux keeps task filters, task restrictions and no_new_privs per thread.
// A Go program runs on several threads, so a caller that registers on the
// task must call runtime.LockOSThread first and then create its rings, or
// fork/exec its child, from that same goroutine: only rings created by that
// thread, and processes it starts afterwards, are filtered. Rings created
// before a task registration are never filtered. SetNoNewPrivs sets the bit
// on every thread of the process.
//
// # Requests and contexts
//
// Request describes an SQE by meaning (a socket's family, an open's flags,
// a connect's address); Request.SQE builds the SQE and Request.Ctx predicts
// the 40-byte context (struct io_uring_bpf_ctx) the kernel gives filters for
// it, including what the kernel's preparation adds (O_LARGEFILE, the async
// flag of creating opens, per-release differences). The kernel tests in
// package internal/kerneltest check these predictions against real
// kernels.
package kernel
