package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/release"
)

// snapshotTOC packs dir as a source snapshot and reads back its TOC.
func snapshotTOC(t *testing.T, dir string) (*snapshot, *release.TOC) {
	t.Helper()
	s, err := packSource(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	f, err := os.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() != s.SizeBytes {
		t.Fatalf("snapshot file %d bytes, result says %d", fi.Size(), s.SizeBytes)
	}
	toc, err := release.Verify(context.Background(), f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return s, toc
}

// TestSnapshotDeterministic: the same tree gives the same snapshot
// whatever the files' mtimes and wherever it lies; a changed byte gives
// another.
func TestSnapshotDeterministic(t *testing.T) {
	a, b := sourceDir(t), sourceDir(t)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.Walk(b, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, old, old)
		return nil
	})
	sa, _ := snapshotTOC(t, a)
	sb, _ := snapshotTOC(t, b)
	if sa.SHA256 != sb.SHA256 || sa.TreeSHA256 != sb.TreeSHA256 {
		t.Fatalf("same tree, other mtimes: %s/%s vs %s/%s", sa.SHA256, sa.TreeSHA256, sb.SHA256, sb.TreeSHA256)
	}
	// Only what the .gitignore leaves out changed: the same snapshot.
	os.WriteFile(filepath.Join(b, "dist", "new.html"), []byte("built"), 0o644)
	os.WriteFile(filepath.Join(b, ".git", "index"), []byte("x"), 0o644)
	if s, _ := snapshotTOC(t, b); s.SHA256 != sa.SHA256 {
		t.Error("an ignored change changed the snapshot")
	}
	os.WriteFile(filepath.Join(b, "index.html"), []byte("<h1>ho</h1>"), 0o644)
	if s, _ := snapshotTOC(t, b); s.SHA256 == sa.SHA256 {
		t.Error("a changed file left the snapshot as it was")
	}
}

// TestSnapshotExcludes: .git/, what the root .gitignore and .cairnignore
// leave out, and the default rules are not in the snapshot; the
// .gitignore itself is.
func TestSnapshotExcludes(t *testing.T) {
	dir := sourceDir(t)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1"), 0o644)
	os.WriteFile(filepath.Join(dir, ".cairnignore"), []byte("*.bak\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "old.bak"), []byte("x"), 0o644)
	s, toc := snapshotTOC(t, dir)
	for _, p := range []string{".git", ".git/HEAD", "dist", "dist/old.html", "node_modules", ".env", ".cairnignore", "old.bak"} {
		if _, ok := toc.Lookup(p); ok {
			t.Errorf("%s is in the snapshot", p)
		}
	}
	for _, p := range []string{".gitignore", "Makefile", "index.html"} {
		if e, ok := toc.Lookup(p); !ok || e.Type != release.TypeFile {
			t.Errorf("%s is not in the snapshot", p)
		}
	}
	if s.Files != 3 || s.Excluded.Paths != 6 {
		t.Errorf("files %d, excluded %+v", s.Files, s.Excluded)
	}
}

// TestSnapshotRefusesDataDir: a source tree that holds a data directory
// is refused, as a publish refuses it, even one the .gitignore leaves
// out, and leaves no temporary file.
func TestSnapshotRefusesDataDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, gitignore := range []string{"", "cairn-data/\n"} {
		dir := sourceDir(t)
		os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(gitignore), 0o644)
		data := filepath.Join(dir, "cairn-data")
		os.Mkdir(data, 0o700)
		if err := ignore.MarkDataDir(data); err != nil {
			t.Fatal(err)
		}
		s, err := packSource(context.Background(), dir, nil)
		if !errors.Is(err, ignore.ErrDataDir) {
			s.remove()
			t.Errorf(".gitignore %q: %v", gitignore, err)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("a refused snapshot left %s behind", left[0].Name())
	}
}
