package main

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs.revision", Value: "e37b2fe807a2c0ffee0123456789abcdef012345"},
		{Key: "vcs.time", Value: "2026-12-04T16:12:40Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"tag", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.8"},
		{"pseudo-version", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261204161240-e37b2fe807a2+dirty"}, Settings: vcs},
			"v0.0.0-20261204161240-e37b2fe807a2+dirty go1.26.8"},
		{"devel with vcs", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"(devel) rev e37b2fe807a2 2026-12-04T16:12:40Z dirty go1.26.8"},
		{"nothing stamped", debug.BuildInfo{}, "(devel)"},
	} {
		if got := formatVersion(&c.bi); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
