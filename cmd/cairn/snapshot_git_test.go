package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
)

// TestSnapshotNestedGitIgnore: through both walkers (the snapshot's packer
// and client.ScanTree, which sizes its progress bar), a nested .gitignore
// applies to its directory and below, a deeper "!" re-includes what the
// root excluded, and .git/info/exclude applies; both agree.
func TestSnapshotNestedGitIgnore(t *testing.T) {
	dir := sourceDir(t)
	for name, body := range map[string]string{
		".git/info/exclude":     "notes.txt\n",
		"notes.txt":             "x",
		"pkg/.gitignore":        "build/\n!node_modules/\n",
		"pkg/build/out.o":       "x",
		"pkg/node_modules/m.js": "x",
		"pkg/main.go":           "x",
		"web/build/index.html":  "x",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, toc := snapshotTOC(t, dir)
	for _, p := range []string{"notes.txt", "pkg/build", "node_modules", "dist"} {
		if _, ok := toc.Lookup(p); ok {
			t.Errorf("%s is in the snapshot", p)
		}
	}
	for _, p := range []string{"pkg/.gitignore", "pkg/main.go", "pkg/node_modules/m.js", "web/build/index.html"} {
		if _, ok := toc.Lookup(p); !ok {
			t.Errorf("%s is not in the snapshot", p)
		}
	}
	want := "5 paths left out (notes.txt ×1 .git/info/exclude:1, dist/ ×1 .gitignore:1, node_modules/ ×1 .gitignore:2, build/ ×1 pkg/.gitignore:1, .git/ ×1 default)"
	if got := s.Excluded.String(); got != want {
		t.Errorf("excluded %q\nwant      %q", got, want)
	}
	rules, err := ignore.Load(dir, ignore.Options{GitIgnore: true})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := client.ScanTree(dir, rules)
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := tree.Size(); int64(files) != s.Files {
		t.Errorf("ScanTree: %d files, the snapshot %d", files, s.Files)
	}
	if got := rules.Summary().String(); got != want {
		t.Errorf("ScanTree excluded %q", got)
	}
}
