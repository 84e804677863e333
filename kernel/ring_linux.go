package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
)

// mmap offsets and feature bits of io_uring_setup.
const (
	offSQRing      = 0
	offCQRing      = 0x8000000
	offSQEs        = 0x10000000
	featSingleMmap = 1 << 0
	enterGetEvents = 1 << 0
	enterSQWakeup  = 1 << 1
	sqNeedWakeup   = 1 << 0
	sqeSize        = 64
	cqeSize        = 16
	paramsSize     = 120
)

// Ring is a minimal io_uring instance: one submission and one completion
// queue mapped into memory. A Ring is not safe for concurrent use; it may
// be used from any goroutine (and thread) in turn.
type Ring struct {
	fd      int
	flags   uint32
	sqMem   []byte // SQ ring mapping (also the CQ ring with FEAT_SINGLE_MMAP)
	cqMem   []byte // CQ ring mapping when separate
	sqes    []byte // the SQE array mapping
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqFlags *uint32
	sqArray []uint32
	sqEnt   uint32
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []byte

	inflight int   // requests submitted and not yet reaped
	keep     []any // Go memory that submitted SQEs point to
}

// NewRing creates a ring with io_uring_setup and maps its queues. Errors
// explain why io_uring is unavailable (ENOSYS, EPERM from
// kernel.io_uring_disabled, ENOMEM ...).
func NewRing(p Params) (*Ring, error) {
	entries := p.Entries
	if entries == 0 {
		entries = 8
	}
	var params [paramsSize]byte
	ne := binary.NativeEndian
	ne.PutUint32(params[8:], p.Flags)
	ne.PutUint32(params[16:], p.SQThreadIdle)
	ne.PutUint32(params[24:], uint32(int32(p.WQFD)))
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return nil, errSetup(errno, p.Flags)
	}
	r := &Ring{fd: int(fd), flags: p.Flags}
	if err := r.mapQueues(params[:]); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// mapQueues maps the rings described by the io_uring_params the kernel
// filled in.
func (r *Ring) mapQueues(params []byte) error {
	ne := binary.NativeEndian
	sqEntries := ne.Uint32(params[0:])
	cqEntries := ne.Uint32(params[4:])
	features := ne.Uint32(params[20:])
	sq := params[40:80]
	cq := params[80:120]
	sqHead, sqTail, sqMask := ne.Uint32(sq[0:]), ne.Uint32(sq[4:]), ne.Uint32(sq[8:])
	sqFlags, sqArray := ne.Uint32(sq[16:]), ne.Uint32(sq[24:])
	cqHead, cqTail, cqMask, cqCQEs := ne.Uint32(cq[0:]), ne.Uint32(cq[4:]), ne.Uint32(cq[8:]), ne.Uint32(cq[20:])

	sqSize := int(sqArray) + int(sqEntries)*4
	cqSize := int(cqCQEs) + int(cqEntries)*cqeSize
	if features&featSingleMmap != 0 {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return &Error{Op: "mmap io_uring submission queue", Errno: errnoOf(err)}
	}
	cqMem := r.sqMem
	if features&featSingleMmap == 0 {
		r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return &Error{Op: "mmap io_uring completion queue", Errno: errnoOf(err)}
		}
		cqMem = r.cqMem
	}
	r.sqes, err = unix.Mmap(r.fd, offSQEs, int(sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return &Error{Op: "mmap io_uring SQE array", Errno: errnoOf(err)}
	}
	r.sqHead = word(r.sqMem, sqHead)
	r.sqTail = word(r.sqMem, sqTail)
	r.sqMask = *word(r.sqMem, sqMask)
	r.sqFlags = word(r.sqMem, sqFlags)
	r.sqArray = unsafe.Slice(word(r.sqMem, sqArray), sqEntries)
	r.sqEnt = sqEntries
	r.cqHead = word(cqMem, cqHead)
	r.cqTail = word(cqMem, cqTail)
	r.cqMask = *word(cqMem, cqMask)
	r.cqes = cqMem[cqCQEs : int(cqCQEs)+int(cqEntries)*cqeSize]
	return nil
}

// errnoOf returns the errno err wraps, or EIO if it wraps none.
func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return unix.EIO
}

// word returns a pointer to the 32-bit word at byte offset off of b.
func word(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// FD returns the ring's file descriptor.
func (r *Ring) FD() int { return r.fd }

// Entries returns the size of the submission queue.
func (r *Ring) Entries() int { return int(r.sqEnt) }

// Close unmaps the queues and closes the ring. Requests still in flight
// are cancelled by the kernel.
func (r *Ring) Close() error {
	for _, m := range [][]byte{r.sqes, r.cqMem, r.sqMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	r.sqes, r.cqMem, r.sqMem = nil, nil, nil
	r.keep = nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// encode writes s into the 64 bytes of b in native byte order.
func (s *SQE) encode(b []byte) {
	ne := binary.NativeEndian
	clear(b[:sqeSize])
	b[0] = byte(s.Opcode)
	b[1] = s.Flags
	ne.PutUint16(b[2:], s.IOPrio)
	ne.PutUint32(b[4:], uint32(s.FD))
	ne.PutUint64(b[8:], s.Off)
	ne.PutUint64(b[16:], s.Addr)
	ne.PutUint32(b[24:], s.Len)
	ne.PutUint32(b[28:], s.OpFlags)
	ne.PutUint64(b[32:], s.UserData)
	ne.PutUint16(b[40:], s.BufIndex)
	ne.PutUint16(b[42:], s.Personality)
	ne.PutUint32(b[44:], s.FileIndex)
	ne.PutUint64(b[48:], s.Addr3)
}

// Submit queues sqes and submits them with io_uring_enter, waiting for
// wait completions (0 to not wait). It returns how many SQEs the kernel
// consumed. If io_uring_enter fails before consuming any, the SQEs are
// withdrawn and the error returned. A request the kernel refuses, for example because a filter
// denied it, still counts as submitted and completes with an error in its
// CQE.
func (r *Ring) Submit(sqes []SQE, wait int) (int, error) {
	head := atomic.LoadUint32(r.sqHead)
	tail := *r.sqTail // only this process writes the tail
	oldTail := tail
	if uint32(len(sqes)) > r.sqEnt-(tail-head) {
		return 0, fmt.Errorf("io_uring submit: %d requests do not fit in the %d free submission queue entries", len(sqes), r.sqEnt-(tail-head))
	}
	for i := range sqes {
		idx := tail & r.sqMask
		sqes[i].encode(r.sqes[idx*sqeSize : (idx+1)*sqeSize])
		r.sqArray[idx] = idx
		r.keep = append(r.keep, sqes[i].Keep...)
		tail++
	}
	atomic.StoreUint32(r.sqTail, tail) // publishes the SQEs to the kernel
	if r.flags&SetupSQPoll != 0 {
		// The poll thread consumes the queue; io_uring_enter only wakes it
		// or waits.
		r.inflight += len(sqes)
		var flags uintptr
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			flags |= enterSQWakeup
		}
		if wait > 0 {
			flags |= enterGetEvents
		}
		if flags != 0 {
			if err := r.enter(0, wait, flags); err != nil {
				return len(sqes), err
			}
		}
		return len(sqes), nil
	}
	// Some kernels stop consuming a batch at a request they refuse (for
	// example one a filter denies) and return a short count: submit again
	// until the kernel has consumed every SQE.
	done := 0
	for done < len(sqes) {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(len(sqes)-done), 0, 0, 0, 0)
		runtime.KeepAlive(sqes)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			// The kernel consumed nothing more: withdraw the rest so that
			// a later call does not submit them.
			if done == 0 && atomic.LoadUint32(r.sqHead) == head {
				atomic.StoreUint32(r.sqTail, oldTail)
			}
			return done, &Error{Op: "io_uring_enter", Errno: errno, Advice: enterAdvice(errno)}
		}
		if n == 0 {
			return done, fmt.Errorf("io_uring_enter consumed none of %d queued requests", len(sqes)-done)
		}
		done += int(n)
		r.inflight += int(n)
	}
	if wait > 0 {
		if err := r.enter(0, wait, enterGetEvents); err != nil {
			return done, err
		}
	}
	return done, nil
}

// enter calls io_uring_enter to wake the poll thread or wait.
func (r *Ring) enter(toSubmit, wait int, flags uintptr) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(wait), flags, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return &Error{Op: "io_uring_enter", Errno: errno, Advice: enterAdvice(errno)}
		}
		return nil
	}
}

func enterAdvice(errno unix.Errno) string {
	switch errno {
	case unix.EBADFD:
		return "the ring is disabled (created with IORING_SETUP_R_DISABLED and not enabled yet)"
	case unix.EBUSY, unix.EAGAIN:
		return "the completion queue is full: reap completions first"
	}
	return ""
}

// Reap returns the completions that are ready, without waiting.
func (r *Ring) Reap() []CQE {
	var out []CQE
	ne := binary.NativeEndian
	head := *r.cqHead // only this process writes the head
	tail := atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		idx := head & r.cqMask
		c := r.cqes[idx*cqeSize : (idx+1)*cqeSize]
		out = append(out, CQE{UserData: ne.Uint64(c[0:]), Res: int32(ne.Uint32(c[8:])), Flags: ne.Uint32(c[12:])})
	}
	atomic.StoreUint32(r.cqHead, head) // gives the entries back to the kernel
	r.inflight -= len(out)
	if r.inflight <= 0 {
		r.inflight = 0
		r.keep = nil
	}
	return out
}

// Wait waits until at least n completions are ready and returns all the
// ready ones.
func (r *Ring) Wait(n int) ([]CQE, error) {
	var out []CQE
	for {
		out = append(out, r.Reap()...)
		if len(out) >= n {
			return out, nil
		}
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, uintptr(n-len(out)), enterGetEvents, 0, 0)
		if errno != 0 && errno != unix.EINTR {
			return out, &Error{Op: "io_uring_enter (wait)", Errno: errno, Advice: enterAdvice(errno)}
		}
	}
}

// doMarker is the user_data of the NOP that Do adds after a request
// with IOSQE_CQE_SKIP_SUCCESS.
const doMarker = 0xfeedfacecafef00d

// Do submits one request, waits for its completion and returns it.
//
// A request with IOSQE_CQE_SKIP_SUCCESS posts no completion when it
// succeeds: Do then submits a NOP after it and, when the NOP completes
// first, returns a CQE with Skipped set and Res 0. That is exact for
// requests that complete inline (NOP, SOCKET, a refusal by a filter); a
// request the kernel runs asynchronously could still fail later.
func (r *Ring) Do(s SQE) (CQE, error) {
	skip := s.Flags&abi.IOSQECQESkipSuccess != 0
	if _, err := r.Submit([]SQE{s}, 0); err != nil {
		return CQE{}, err
	}
	if skip {
		// A separate submission, so that the NOP never joins a link chain
		// the request starts (a failed chain with CQE_SKIP_SUCCESS posts no
		// completions for the rest of the chain). With SQPOLL, wait until
		// the poll thread has consumed the request first.
		if r.flags&SetupSQPoll != 0 {
			if err := r.waitConsumed(); err != nil {
				return CQE{}, err
			}
		}
		if _, err := r.Submit([]SQE{{Opcode: abi.OpNop, UserData: doMarker}}, 0); err != nil {
			return CQE{}, err
		}
	}
	if !skip {
		cqes, err := r.Wait(1)
		if err != nil {
			return CQE{}, err
		}
		if len(cqes) != 1 {
			return CQE{}, fmt.Errorf("io_uring: expected 1 completion, got %d", len(cqes))
		}
		return cqes[0], nil
	}
	got := CQE{UserData: s.UserData, Skipped: true}
	for seen := false; !seen; {
		cqes, err := r.Wait(1)
		if err != nil {
			return CQE{}, err
		}
		for _, c := range cqes {
			if c.UserData == doMarker && !seen {
				seen = true
			} else {
				got = c
			}
		}
	}
	return got, nil
}

// waitConsumed waits until the SQPOLL thread has consumed every queued SQE.
func (r *Ring) waitConsumed() error {
	for atomic.LoadUint32(r.sqHead) != atomic.LoadUint32(r.sqTail) {
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			if err := r.enter(0, 0, enterSQWakeup); err != nil {
				return err
			}
		}
		runtime.Gosched()
	}
	return nil
}
