// Package escape is ringfence's escape suite: attacks on "ringfence run"
// by the program it confines (or by whoever launches it), each run against
// real kernels in the VM harness. Every attack that once worked is a test
// that fails if it works again; the attacks that always held are kept as
// regressions. The test binary plays every part: ringfence (through
// internal/cli), the launcher, the victim and the attacker.
//
// The package has no non-test code.
package escape
