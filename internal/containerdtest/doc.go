// Package containerdtest holds the end-to-end tests of ringfence's
// container routes under a real containerd (Debian's, from the guest
// userland), driven through its CRI API as the kubelet drives it: the
// runtime handler (ringfence-runtime behind containerd's runc shim, the
// RuntimeClass route) and the NRI plugin ("ringfence nri" on containerd's
// NRI socket). The tests run inside the VM harness and skip on the host.
package containerdtest
