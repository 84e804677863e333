// Package seccomptest holds the real-kernel tests of package
// seccompprofile: the io_uring policies derived from Docker's and Podman's
// default seccomp profiles (testdata/seccomp), registered as ring filters,
// must deny the requests whose system calls the profiles deny and allow
// the others, as the kernel decides them. They run inside the VM harness
// (go run ./cmd/ringfence vm test --packages ./internal/seccomptest) and
// skip on the host.
//
// The package has no non-test code.
package seccomptest
