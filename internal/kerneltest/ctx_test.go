package kerneltest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/kernel"
)

// ctxCase is one request whose context the kernel must show as
// kernel.Request.Ctx predicts.
type ctxCase struct {
	name string
	req  kernel.Request
}

func ctxCases(dir int32, file string) []ctxCase {
	inet4 := kernel.SockaddrInet4(8080, [4]byte{192, 0, 2, 1})
	inet6 := kernel.SockaddrInet6(443, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	sock := func(d, t, p uint32) kernel.Request {
		return kernel.Request{Op: abi.OpSocket, Socket: kernel.SocketArgs{Domain: d, Type: t, Protocol: p}}
	}
	open := func(flags, mode uint64) kernel.Request {
		return kernel.Request{Op: abi.OpOpenat, Open: kernel.OpenArgs{Dir: dir, Path: file, Flags: flags, Mode: mode}}
	}
	open2 := func(flags, mode, resolve uint64) kernel.Request {
		return kernel.Request{Op: abi.OpOpenat2, Open: kernel.OpenArgs{Dir: dir, Path: file, Flags: flags, Mode: mode, Resolve: resolve}}
	}
	conn := func(addr []byte, n uint32) kernel.Request {
		return kernel.Request{Op: abi.OpConnect, Connect: kernel.ConnectArgs{FD: -1, Addr: addr, AddrLen: n}}
	}
	return []ctxCase{
		{"nop", nop(0)},
		{"nop async", kernel.Request{Op: abi.OpNop, Flags: abi.IOSQEAsync}},
		{"nop link", kernel.Request{Op: abi.OpNop, Flags: abi.IOSQEIOLink}},
		{"nop fixed file", kernel.Request{Op: abi.OpNop, Flags: abi.IOSQEFixedFile}},
		{"nop skip success", kernel.Request{Op: abi.OpNop, Flags: abi.IOSQECQESkipSuccess}},
		{"nop drain", kernel.Request{Op: abi.OpNop, Flags: abi.IOSQEIODrain}},
		{"socket inet stream", sock(unix.AF_INET, unix.SOCK_STREAM, 0)},
		{"socket inet6 dgram udp", sock(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP)},
		{"socket stream nonblock", sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)},
		{"socket unix cloexec", sock(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)},
		{"socket bad family", sock(12345, 7, 99)},
		{"openat rdonly", open(unix.O_RDONLY, 0)},
		{"openat rdwr mode ignored", open(unix.O_RDWR, 0o644)},
		{"openat creat", open(unix.O_RDWR|unix.O_CREAT, 0o640)},
		{"openat creat mode masked", open(unix.O_WRONLY|unix.O_CREAT, 0o177777)},
		{"openat trunc", open(unix.O_WRONLY|unix.O_TRUNC, 0)},
		{"openat path", open(unix.O_PATH|unix.O_NOFOLLOW|unix.O_RDWR, 0)},
		{"openat invalid bits", open(0x80000000|unix.O_RDONLY, 0)},
		{"openat cloexec largefile", open(unix.O_CLOEXEC|unix.O_LARGEFILE, 0)},
		{"openat bit 25", open(1<<25, 0)},
		{"openat bit 26", open(1<<26, 0)},
		{"openat bits 27-30", open(0xf<<27, 0)},
		{"openat path bit 26", open(unix.O_PATH|1<<26, 0)},
		{"openat path cloexec", open(unix.O_PATH|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)},
		{"openat2 rdonly", open2(unix.O_RDONLY, 0, 0)},
		{"openat2 resolve", open2(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS)},
		{"openat2 creat", open2(unix.O_RDWR|unix.O_CREAT, 0o600, 0)},
		{"openat2 raw high bits", open2(1<<40|unix.O_RDONLY, 1<<33, 1<<50)},
		{"openat2 path", open2(unix.O_PATH, 0, 0)},
		{"connect inet", conn(inet4, 16)},
		{"connect inet6", conn(inet6, 28)},
		{"connect inet short", conn(inet4, 8)},
		{"connect inet short 15", conn(inet4, 15)},
		{"connect inet6 rfc2133 24", conn(inet6, 24)},
		{"connect inet6 short 23", conn(inet6, 23)},
		{"connect inet6 27", conn(inet6, 27)},
		{"connect family only", conn(inet4, 2)},
		{"connect len 1", conn(inet4, 1)},
		{"connect len 0", conn(nil, 0)},
		{"connect unix", conn(append([]byte{1, 0}, "/x"...), 4)},
	}
}

// TestContext reads back, bit by bit, the context the kernel gives filters
// for many requests and compares it with kernel.Request.Ctx.
func TestContext(t *testing.T) {
	v := needFilters(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, c := range ctxCases(int32(dfd), "f") {
		t.Run(c.name, func(t *testing.T) {
			want, ok := c.req.Ctx(v)
			if !ok {
				t.Fatalf("prediction says preparation fails for %+v", c.req)
			}
			got, err := observeCtx(c.req)
			if err != nil {
				t.Fatal(err)
			}
			ww := ctxWords(want)
			for i := 2; i < 10; i++ {
				if got[i] != ww[i] {
					t.Errorf("Linux %v: word %d (offset %d) = %#08x, ringfence predicts %#08x\n got  %s\n want %s",
						v, i, 4*i, got[i], ww[i], hexWords(got), hexWords(ww))
				}
			}
		})
	}
}
