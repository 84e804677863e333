// Package uringprobe submits one io_uring request of every opcode family
// and reports each completion's result. The kernel tests of "ringfence run"
// run it under a policy and, unfiltered, as a baseline, and compare what
// the kernel did with what the policy says.
//
// A request can fail before any filter looks at it (its preparation refuses
// the arguments), or fail with EACCES on its own; only the comparison with
// an unfiltered baseline, made by the caller, tells what the filter did.
package uringprobe

import (
	"fmt"
	"syscall"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// Probe is one request the probe submits.
type Probe struct {
	// Name identifies the probe in reports: the opcode and its arguments.
	Name string
	// Req is the request; Req.Ctx predicts the filter's context.
	Req kernel.Request
}

// Result is the completion of one probe.
type Result struct {
	Name string     `json:"name"`
	Op   abi.Opcode `json:"op"`
	// Res is the CQE result: >= 0 on success, a negative errno on failure.
	Res int32 `json:"res"`
}

// Denied reports whether the request completed with -EACCES.
func (r Result) Denied() bool { return r.Res == -int32(syscall.EACCES) }

// Probes returns the probes: every opcode below abi.OpLast with an empty
// request on descriptor -1 (which most opcodes accept in preparation and
// then fail with EBADF or similar), plus SOCKET, OPENAT, OPENAT2 and
// CONNECT requests with meaningful arguments: ordinary and dangerous
// socket families and types, read-only and creating opens.
func Probes() []Probe {
	var ps []Probe
	for op := abi.Opcode(0); op < abi.OpLast; op++ {
		switch op {
		case abi.OpSocket, abi.OpOpenat, abi.OpOpenat2, abi.OpConnect:
			continue // below, with arguments
		}
		ps = append(ps, Probe{Name: op.String(), Req: Request(op)})
	}
	sock := func(name string, d, t, p uint32) Probe {
		return Probe{Name: "SOCKET " + name, Req: kernel.Request{Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: d, Type: t, Protocol: p}}}
	}
	ps = append(ps,
		sock("AF_INET SOCK_STREAM", 2, 1, 0),
		sock("AF_INET SOCK_DGRAM", 2, 2, 0),
		sock("AF_INET6 SOCK_STREAM", 10, 1, 0),
		sock("AF_UNIX SOCK_STREAM", 1, 1, 0),
		sock("AF_UNIX SOCK_DGRAM", 1, 2, 0),
		sock("AF_INET SOCK_STREAM|SOCK_NONBLOCK", 2, 1|0o4000, 0),
		sock("AF_INET SOCK_RAW", 2, 3, 1),
		sock("AF_PACKET SOCK_RAW", 17, 3, 0),
		sock("AF_NETLINK SOCK_RAW", 16, 3, 0),
		sock("AF_NETLINK SOCK_DGRAM", 16, 2, 0),
		sock("AF_VSOCK SOCK_STREAM", 40, 1, 0),
		sock("AF_ALG SOCK_SEQPACKET", 38, 5, 0),
		sock("AF_XDP SOCK_RAW", 44, 3, 0),
		sock("AF_INET SOCK_STREAM IPPROTO_TCP", 2, 1, 6),
		sock("AF_INET SOCK_DGRAM IPPROTO_UDP", 2, 2, 17),
		sock("AF_INET6 SOCK_STREAM IPPROTO_MPTCP", 10, 1, 262),
		sock("AF_INET SOCK_STREAM IPPROTO_SCTP", 2, 1, 132),
		sock("AF_INET6 SOCK_SEQPACKET IPPROTO_SCTP", 10, 5, 132),
		sock("AF_INET SOCK_DGRAM IPPROTO_L2TP", 2, 2, 115),
		sock("AF_INET SOCK_DGRAM IPPROTO_UDPLITE", 2, 2, 136),
	)
	open := func(name string, op abi.Opcode, path string, flags, mode uint64) Probe {
		return Probe{Name: op.String() + " " + name, Req: kernel.Request{Op: op, Open: kernel.OpenArgs{Dir: -100, Path: path, Flags: flags, Mode: mode}}}
	}
	for _, op := range []abi.Opcode{abi.OpOpenat, abi.OpOpenat2} {
		ps = append(ps,
			open("/proc/self/status O_RDONLY", op, "/proc/self/status", 0, 0),
			open("/tmp/ringfence-probe O_WRONLY|O_CREAT", op, "/tmp/ringfence-probe", 0o1|0o100, 0o600),
			open("/tmp/ringfence-probe O_RDWR", op, "/tmp/ringfence-probe", 0o2, 0),
			open("/tmp/ringfence-probe O_WRONLY|O_APPEND", op, "/tmp/ringfence-probe", 0o1|0o2000, 0),
			open("/tmp/ringfence-probe O_WRONLY|O_TRUNC", op, "/tmp/ringfence-probe", 0o1|0o1000, 0),
			open("/tmp O_RDONLY|O_DIRECTORY", op, "/tmp", 0o200000, 0),
			open("/tmp O_RDWR|O_TMPFILE", op, "/tmp", 0o2|0o20200000, 0o600),
		)
	}
	ps = append(ps, Probe{Name: "CONNECT fd -1 AF_INET 127.0.0.1:80", Req: kernel.Request{Op: abi.OpConnect,
		Connect: kernel.ConnectArgs{FD: -1, Addr: kernel.SockaddrInet4(80, [4]byte{127, 0, 0, 1}), AddrLen: 16}}})
	for i := range ps {
		ps[i].Req.UserData = uint64(i + 1)
	}
	return ps
}

// Mode is how the probe submits its requests.
type Mode string

// The submission modes.
const (
	Plain  Mode = "plain"  // one request at a time
	SQPoll Mode = "sqpoll" // on an IORING_SETUP_SQPOLL ring: a kernel thread submits
	Async  Mode = "async"  // with IOSQE_ASYNC: the request runs from a worker thread
	Linked Mode = "linked" // second in a chain: a NOP with IOSQE_IO_LINK, then the request
)

// ParseMode parses a Mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Plain, SQPoll, Async, Linked:
		return m, nil
	}
	return "", fmt.Errorf("bad probe mode %q: want plain, sqpoll, async or linked", s)
}

// Flags returns the SQE flags mode m gives each probe.
func (m Mode) Flags() uint8 {
	if m == Async {
		return abi.IOSQEAsync
	}
	return 0
}

// Run creates a ring for mode m, submits every probe and returns the
// results in the order of ps. Descriptors a probe opens are closed.
func Run(ps []Probe, m Mode) ([]Result, error) {
	params := kernel.Params{Entries: 8}
	if m == SQPoll {
		params.Flags = kernel.SetupSQPoll
		params.SQThreadIdle = 10
	}
	ring, err := kernel.NewRing(params)
	if err != nil {
		return nil, err
	}
	defer ring.Close()
	out := make([]Result, 0, len(ps))
	for _, p := range ps {
		q := p.Req
		q.Flags |= m.Flags()
		sqe := SQE(q)
		batch := []kernel.SQE{sqe}
		if m == Linked {
			batch = []kernel.SQE{{Opcode: abi.OpNop, Flags: abi.IOSQEIOLink, UserData: 1 << 40}, sqe}
		}
		cqe, err := Do(ring, batch, sqe.UserData)
		if err != nil {
			return out, fmt.Errorf("%s: %w", p.Name, err)
		}
		if cqe.Res >= 0 && (p.Req.Op == abi.OpSocket || p.Req.Op == abi.OpOpenat || p.Req.Op == abi.OpOpenat2) {
			kernel.CloseFD(int(cqe.Res))
		}
		out = append(out, Result{Name: p.Name, Op: p.Req.Op, Res: cqe.Res})
	}
	return out, nil
}

// cqeFMore is IORING_CQE_F_MORE: more completions follow for the request
// (the notification of a zero-copy send, a multishot request).
const cqeFMore = 1 << 1

// Do submits batch, whose last request has user data ud, and returns that
// request's first completion. It waits until the request has no more
// completions to come (IORING_CQE_F_MORE clear), so that none is left for
// the next call. Completions of other requests (a linked head) are dropped.
func Do(ring *kernel.Ring, batch []kernel.SQE, ud uint64) (kernel.CQE, error) {
	if _, err := ring.Submit(batch, 1); err != nil {
		return kernel.CQE{}, err
	}
	var first *kernel.CQE
	for {
		cqes, err := ring.Wait(1)
		if err != nil {
			return kernel.CQE{}, err
		}
		for _, c := range cqes {
			if c.UserData != ud {
				continue
			}
			if first == nil {
				c := c
				first = &c
			}
			if c.Flags&cqeFMore == 0 {
				return *first, nil
			}
		}
	}
}
