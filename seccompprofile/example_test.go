package seccompprofile_test

import (
	"fmt"

	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/seccompprofile"
)

// Derive the io_uring policy from Docker's default seccomp profile, and
// ask it about sockets.
func ExampleProfile_Derive() {
	prof, err := seccompprofile.Load("../testdata/seccomp/moby-default.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := prof.Derive(seccompprofile.Options{Runtime: seccompprofile.Docker, Arch: "amd64"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"op=SOCKET family=AF_INET type=SOCK_STREAM", "op=SOCKET family=AF_VSOCK type=SOCK_STREAM", "op=READ", "op=URING_CMD"} {
		r, _ := policy.ParseRequest(s)
		fmt.Printf("%s: %s\n", s, d.Policy.Decide(r).Action())
	}
	// Output:
	// op=SOCKET family=AF_INET type=SOCK_STREAM: allow
	// op=SOCKET family=AF_VSOCK type=SOCK_STREAM: deny
	// op=READ: allow
	// op=URING_CMD: deny
}

// Check a policy that allows AF_VSOCK sockets against Podman's profile.
func ExampleCheck() {
	prof, _ := seccompprofile.Load("../testdata/seccomp/podman-seccomp.json")
	pol, _ := policy.Parse([]byte(`version: 1
default: deny
rules:
  - name: sockets
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_VSOCK]
`), "vsock.yaml")
	bs, _ := seccompprofile.Check(prof, pol, seccompprofile.Options{Runtime: seccompprofile.Podman})
	for _, b := range bs {
		fmt.Println(b.Syscall, b.Request.Socket.Family, b.Verdict, "|", b.PolicyRule, "|", b.ProfileRule)
	}
	// Output:
	// socket 40 denied | rule 1 ("sockets") at line 4 | SCMP_ACT_ERRNO socket when arg0 == 40 (../testdata/seccomp/podman-seccomp.json:960:3)
}
