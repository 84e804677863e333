package userland_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringfence/ringfence/internal/vm/userland"
)

// Find the cached guest userland; userland.Ensure would build it.
func ExampleCached() {
	cache := filepath.Join(os.TempDir(), "no-such-ringfence-cache")
	_, ok := userland.Cached(cache, userland.Default())
	fmt.Println(ok, len(userland.Default().Key()))
	// Output: false 16
}
