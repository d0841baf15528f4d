package main

import (
	"runtime/debug"
	"strings"
)

// versionText describes the binary: its module version, the VCS revision
// and time it was built from (with "modified" when the work tree had
// changes) and the Go version, as recorded by the go command.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "bayou (no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	parts := []string{"bayou", version}
	if rev := settings["vcs.revision"]; rev != "" {
		parts = append(parts, "revision "+rev)
		if t := settings["vcs.time"]; t != "" {
			parts = append(parts, "of "+t)
		}
		if settings["vcs.modified"] == "true" {
			parts = append(parts, "(modified)")
		}
	} else {
		parts = append(parts, "revision unknown")
	}
	parts = append(parts, bi.GoVersion)
	return strings.Join(parts, " ")
}
