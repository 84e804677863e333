package initramfs_test

import (
	"bytes"
	"fmt"

	"github.com/ringfence/ringfence/internal/vm/initramfs"
)

// An initramfs with a console node and an init program, ready for
// qemu -initrd.
func ExampleGzipWriter() {
	var buf bytes.Buffer
	w := initramfs.NewGzipWriter(&buf)
	w.CharDev("dev/console", 0o600, 5, 1) // parent "dev" is added
	w.Bytes("init", 0o755, []byte("#!/bin/sh\necho hello\n"))
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(buf.Len() > 0, bytes.HasPrefix(buf.Bytes(), []byte{0x1f, 0x8b}))
	// Output: true true
}
