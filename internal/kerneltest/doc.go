// Package kerneltest holds ringfence's tests against real kernels. They
// run inside the QEMU kernel matrix (go run ./cmd/ringfence vm test), one
// boot per kernel, and check what the kernel does with io_uring filters:
// registration rules, stacking, inheritance, the contexts filters see, and
// the differential tests that compare ringfence's checker and emulator with
// the kernel on many random programs and requests.
//
// On a host without io_uring BPF filters (before Linux 7.0) the tests skip
// with a message; inside the VM harness (RINGFENCE_IN_VM=1) on a 7.x kernel
// a missing feature is a failure, never a skip.
//
// The package has no non-test code.
package kerneltest
