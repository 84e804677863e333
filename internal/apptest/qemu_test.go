package apptest

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// qemuImageOpts opens a qcow2 image through QEMU's file driver with
// aio=io_uring: every read and write of the image is an io_uring request.
func qemuImageOpts(file string) string {
	return "driver=qcow2,file.driver=file,file.aio=io_uring,file.filename=" + file
}

// TestQEMU runs qemu-img and qemu-io with aio=io_uring on a qcow2 image:
// qemu-img writes the image, qemu-io writes a pattern, reads and verifies
// it and flushes, qemu-img check reads the metadata back. All must work
// unconfined, under default and under storage; under deny-all the first
// read of the image header fails and qemu-io reports it ("Permission
// denied") and exits.
func TestQEMU(t *testing.T) {
	for _, profile := range []string{unconfined, "default", "storage"} {
		t.Run(profile, func(t *testing.T) {
			needFilters(t, profile)
			img := "/tmp/qemu-" + profile + ".qcow2"
			defer os.Remove(img)
			mustRun(t, time.Minute, nil, "qemu-img", "create", "-f", "qcow2", img, "16M")
			out := mustRun(t, 2*time.Minute, nil, under(profile, "qemu-io", "--image-opts",
				"-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 4M 64k", "-c", "flush",
				"-c", "read -P 0xab 0 1M", "-c", "read -P 0xcd 4M 64k", qemuImageOpts(img))...)
			wrote := regexp.MustCompile(`(?m)^wrote \d+/\d+ bytes at offset`).FindAllString(out, -1)
			read := regexp.MustCompile(`(?m)^read \d+/\d+ bytes at offset`).FindAllString(out, -1)
			if len(wrote) != 2 || len(read) != 2 || strings.Contains(out, "Pattern verification failed") {
				t.Errorf("qemu-io:\n%s", out)
			}
			out = mustRun(t, 2*time.Minute, nil, under(profile, "qemu-img", "check", "--image-opts", qemuImageOpts(img))...)
			if !strings.Contains(out, "No errors were found on the image.") {
				t.Errorf("qemu-img check:\n%s", out)
			}
		})
	}
	t.Run("deny-all", func(t *testing.T) {
		needFilters(t, "deny-all")
		img := "/tmp/qemu-deny.qcow2"
		defer os.Remove(img)
		mustRun(t, time.Minute, nil, "qemu-img", "create", "-f", "qcow2", img, "16M")
		r := runCmd(t, 2*time.Minute, nil, under("deny-all", "qemu-io", "--image-opts", "-c", "read 0 4k", qemuImageOpts(img))...)
		if r.exit == 0 || r.timedOut || !strings.Contains(r.out, "Permission denied") {
			t.Errorf("want qemu-io to fail with Permission denied: %s", r)
		}
	})
}
