// Package apptest holds the application tests: real programs that use
// io_uring (PostgreSQL 18, Node.js, fio, qemu-img and qemu-io), run in the
// VM harness with the Debian guest userland (package vm/userland), first
// unconfined and then under ringfence's profiles with the real
// "ringfence run". On the host every test skips itself.
package apptest
