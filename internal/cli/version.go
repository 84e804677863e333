package cli

import (
	"runtime/debug"
	"strings"
)

// readBuildInfo returns the binary's build information, or nil when it
// has none.
func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// versionLine describes a build: the main module's path and version, the
// VCS revision and its time when recorded, "modified" when the tree had
// changes, and the Go version.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return "ringfence: no build information in this binary"
	}
	path, version := bi.Main.Path, bi.Main.Version
	if path == "" {
		path = "ringfence"
	}
	if version == "" {
		version = "(unknown version)"
	}
	parts := []string{path + " " + version}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		r := "revision " + rev
		if when != "" {
			r += " (" + when + ")"
		}
		if modified {
			r += ", modified"
		}
		parts = append(parts, r)
	}
	if bi.GoVersion != "" {
		parts = append(parts, "built with "+bi.GoVersion)
	}
	return strings.Join(parts, ", ")
}
