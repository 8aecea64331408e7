package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion is what `cairn --version` prints and the CLI's User-Agent
// carries: the module version (a tag for `go install …@vX`, "(devel)" for
// a build from a checkout), then the VCS revision, its commit time and
// "dirty" when the tree had changes, as the go command stamps them.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{v}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A pseudo-version (v0.0.0-20261204161240-e37b2fe807a2+dirty) already
	// names the revision, its time and a dirty tree.
	if rev != "" && !strings.Contains(v, rev) {
		parts = append(parts, "rev "+rev)
		if at != "" {
			parts = append(parts, at)
		}
		if dirty {
			parts = append(parts, "dirty")
		}
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, " ")
}
