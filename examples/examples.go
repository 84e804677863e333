// Package examples embeds the example policies and their cases files, so
// tests that run where the source tree is not (the kernel-test VMs) can
// read them.
package examples

import "embed"

// FS holds every *.yaml file of this directory: NAME.yaml policies and
// NAME.cases.yaml cases.
//
//go:embed *.yaml
var FS embed.FS
