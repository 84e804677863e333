package vm_test

import (
	"fmt"

	"github.com/ringfence/ringfence/internal/vm"
	"github.com/ringfence/ringfence/internal/vm/debian"
)

// Parse what a guest printed into per-step, per-test results.
func ExampleParseConsole() {
	k, _ := debian.ParseKernelPackage("linux-binary-7.3.4+deb13-amd64")
	r := &vm.Result{Kernel: k}
	vm.ParseConsole(r, []byte(`=== RINGFENCE BOOT release=7.3.4+deb13-amd64 filters=yes
=== RINGFENCE BEGIN example.com/pkg
--- PASS: TestA (0.00s)
--- FAIL: TestB (0.01s)
=== RINGFENCE END example.com/pkg exit=1
=== RINGFENCE DONE
`))
	fmt.Println(r.Release, r.Filters, r.Steps[0].Tests, r.Count(), r.OK())
	// Output: 7.3.4+deb13-amd64 yes [{TestA PASS} {TestB FAIL}] {1 1 0} false
}
