package runtime

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// TestCheckBuild: what Build refuses before it does anything.
func TestCheckBuild(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	good := hostapi.Build{ID: "bld_0123abc", Builder: sha, BuilderTree: sha, Source: sha, SourceTree: sha,
		Command: "make", Output: "dist", Timeout: "10m"}
	if d, err := checkBuild(good); err != nil || d.String() != "10m0s" {
		t.Fatalf("a good build: %v, %v", d, err)
	}
	for name, change := range map[string]func(*hostapi.Build){
		"id without bld_":    func(b *hostapi.Build) { b.ID = "0123abc" },
		"id with capitals":   func(b *hostapi.Build) { b.ID = "bld_ABC" },
		"id with a slash":    func(b *hostapi.Build) { b.ID = "bld_a/../b" },
		"short builder":      func(b *hostapi.Build) { b.Builder = "abcd" },
		"upper-case source":  func(b *hostapi.Build) { b.Source = strings.ToUpper(sha) },
		"no source tree":     func(b *hostapi.Build) { b.SourceTree = "" },
		"no command":         func(b *hostapi.Build) { b.Command = "  " },
		"absolute output":    func(b *hostapi.Build) { b.Output = "/etc" },
		"output ..":          func(b *hostapi.Build) { b.Output = ".." },
		"output ../x":        func(b *hostapi.Build) { b.Output = "../x" },
		"output not clean":   func(b *hostapi.Build) { b.Output = "dist/../../x" },
		"output trailing /":  func(b *hostapi.Build) { b.Output = "dist/" },
		"empty output":       func(b *hostapi.Build) { b.Output = "" },
		"env name with =":    func(b *hostapi.Build) { b.Env = map[string]string{"A=B": "c"} },
		"env value with NUL": func(b *hostapi.Build) { b.Env = map[string]string{"A": "\x00"} },
		"no timeout":         func(b *hostapi.Build) { b.Timeout = "" },
		"timeout not a time": func(b *hostapi.Build) { b.Timeout = "10" },
		"timeout of zero":    func(b *hostapi.Build) { b.Timeout = "0s" },
		"a negative timeout": func(b *hostapi.Build) { b.Timeout = "-1m" },
		"negative disk":      func(b *hostapi.Build) { b.DiskBytes = -1 },
	} {
		b := good
		change(&b)
		if _, err := checkBuild(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBuildEnv: the fixed environment, SOURCE_DATE_EPOCH, then the
// build's own by name; a fixed name the build sets takes its value.
func TestBuildEnv(t *testing.T) {
	got := buildEnvOf(hostapi.Build{SourceDateEpoch: 1700000000, Env: map[string]string{"Z": "1", "A": "2", "PATH": "/opt/bin"}})
	want := "PATH=/opt/bin HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC SOURCE_DATE_EPOCH=1700000000 A=2 Z=1"
	if strings.Join(got, " ") != want {
		t.Fatalf("env %q\nwant %q", got, want)
	}
}
