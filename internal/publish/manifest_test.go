package publish

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/release"
)

const shaA = "ca978112ca1bbdcafac231b39a23dc4da786eff8146d5bd4c6f6d0b9a1d5b8e5"

var goodManifest = `{"version":1,"entries":[
{"path":"b/x.js","type":"file","mode":420,"size":1,"sha256":"` + shaA + `"},
{"path":"a","type":"symlink","mode":511,"link":"b/x.js"},
{"path":"b","type":"dir","mode":493},
{"path":"e","type":"file","mode":493,"sha256":"` + emptySHA256 + `"},
{"path":"c/y.js","type":"file","mode":420,"size":1,"sha256":"` + shaA + `"}]}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest(strings.NewReader(goodManifest), release.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	if strings.Join(paths, " ") != "a b b/x.js c/y.js e" {
		t.Errorf("paths %v, want sorted", paths)
	}
	if d := m.Digests(); len(d) != 1 || d[0] != shaA {
		t.Errorf("Digests = %v", d)
	}
	if d := m.Missing(func(s string) bool { return s == shaA }); len(d) != 0 {
		t.Errorf("Missing with a known = %v", d)
	}
	if _, err := ParseManifest(strings.NewReader(goodManifest), release.Limits{MaxFiles: 4}); !errors.Is(err, release.ErrTooLarge) {
		t.Errorf("over MaxFiles: %v", err)
	}
	if _, err := ParseManifest(strings.NewReader(goodManifest), release.Limits{MaxBytes: 1}); !errors.Is(err, release.ErrTooLarge) {
		t.Errorf("over MaxBytes: %v", err)
	}
	file := func(path string) string {
		return `{"path":"` + path + `","type":"file","mode":420,"size":1,"sha256":"` + shaA + `"}`
	}
	for name, body := range map[string]string{
		"not json":      `{`,
		"trailing":      `{"version":1,"entries":[]} {}`,
		"version":       `{"version":2,"entries":[]}`,
		"unknown field": `{"version":1,"entries":[],"x":1}`,
		"dotdot":        `{"version":1,"entries":[` + file("../x") + `]}`,
		"absolute":      `{"version":1,"entries":[` + file("/x") + `]}`,
		"control":       `{"version":1,"entries":[` + file(`a\nb`) + `]}`,
		"duplicate":     `{"version":1,"entries":[` + file("x") + `,` + file("x") + `]}`,
		"under a file":  `{"version":1,"entries":[` + file("x") + `,` + file("x/y") + `]}`,
		"bad mode":      `{"version":1,"entries":[{"path":"x","type":"file","mode":511,"size":1,"sha256":"` + shaA + `"}]}`,
		"no sha":        `{"version":1,"entries":[{"path":"x","type":"file","mode":420,"size":1}]}`,
		"empty wrong":   `{"version":1,"entries":[{"path":"x","type":"file","mode":420,"sha256":"` + shaA + `"}]}`,
		"upper sha":     `{"version":1,"entries":[{"path":"x","type":"file","mode":420,"size":1,"sha256":"` + strings.ToUpper(shaA) + `"}]}`,
		"abs link":      `{"version":1,"entries":[{"path":"x","type":"symlink","mode":511,"link":"/etc/passwd"}]}`,
		"dir link":      `{"version":1,"entries":[{"path":"x","type":"dir","mode":493,"link":"y"}]}`,
		"fifo":          `{"version":1,"entries":[{"path":"x","type":"fifo","mode":420}]}`,
		"negative":      `{"version":1,"entries":[{"path":"x","type":"file","mode":420,"size":-1,"sha256":"` + shaA + `"}]}`,
	} {
		if _, err := ParseManifest(strings.NewReader(body), release.Limits{}); !errors.Is(err, release.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzParseManifest: the parser never panics, and what it accepts is
// sorted, unique, of clean names, and parses again to itself.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"version":1,"entries":[]}`))
	f.Add([]byte(`{"version":1,"entries":[{"path":"a/b","type":"dir","mode":493},{"path":"a","type":"symlink","mode":511,"link":"."}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(strings.NewReader(string(b)), release.Limits{MaxFiles: 1000, MaxBytes: 1 << 30})
		if err != nil {
			if !errors.Is(err, release.ErrInvalid) && !errors.Is(err, release.ErrTooLarge) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		for i, e := range m.Entries {
			if release.CheckName(e.Path) != nil || (i > 0 && m.Entries[i-1].Path >= e.Path) {
				t.Fatalf("accepted entry %d %q out of order or unclean", i, e.Path)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(strings.NewReader(string(again)), release.Limits{MaxFiles: 1000, MaxBytes: 1 << 30})
		if err != nil || len(m2.Entries) != len(m.Entries) {
			t.Fatalf("re-parse of an accepted manifest: %v", err)
		}
	})
}
