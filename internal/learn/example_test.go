package learn_test

import (
	"fmt"

	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/internal/learn"
	"github.com/ringfence/ringfence/policy"
)

// A recording of three requests becomes a policy that allows exactly them.
func ExampleRecording_Policy() {
	rec := learn.New()
	rec.Kernel = abi.Version{Major: 7, Minor: 3}
	for _, s := range []string{
		"op=READ",
		"op=SOCKET family=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=IPPROTO_TCP",
		"op=OPENAT flags=O_RDONLY|O_CLOEXEC|O_LARGEFILE",
	} {
		r, _ := policy.ParseRequest(s)
		rec.Add(r, false)
	}
	p := rec.Policy(learn.Options{})
	for _, s := range []string{
		"op=READ",
		"op=SOCKET family=AF_INET type=SOCK_STREAM protocol=IPPROTO_TCP",
		"op=SOCKET family=AF_INET type=SOCK_DGRAM protocol=IPPROTO_UDP",
		"op=OPENAT flags=O_RDONLY|O_LARGEFILE",
		"op=OPENAT flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o644",
		"op=WRITE",
	} {
		r, _ := policy.ParseRequest(s)
		fmt.Printf("%-5s %s\n", p.Decide(r).Action(), s)
	}
	// Output:
	// allow op=READ
	// allow op=SOCKET family=AF_INET type=SOCK_STREAM protocol=IPPROTO_TCP
	// deny  op=SOCKET family=AF_INET type=SOCK_DGRAM protocol=IPPROTO_UDP
	// allow op=OPENAT flags=O_RDONLY|O_LARGEFILE
	// deny  op=OPENAT flags=O_WRONLY|O_CREAT|O_LARGEFILE mode=0o644
	// deny  op=WRITE
}
