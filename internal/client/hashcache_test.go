package client

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// manifestWith scans dir and lists its manifest with the cache under
// cache, its clock at now; it answers the digests by path, the files
// hashed, and saves the cache.
func manifestWith(t *testing.T, cache, dir string, now time.Time) (map[string]string, int) {
	t.Helper()
	hc, err := OpenHashCache(cache, dir)
	if err != nil {
		t.Fatal(err)
	}
	hc.nowFunc = func() time.Time { return now }
	tree, err := ScanTree(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tree.Cache = hc
	entries, _, err := tree.Manifest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.Save(); err != nil {
		t.Fatal(err)
	}
	if hc.Hits+tree.Hashed != 5 {
		t.Fatalf("%d cache hits and %d files hashed, of 5", hc.Hits, tree.Hashed)
	}
	shas := map[string]string{}
	for _, e := range entries {
		if e.Type == "file" {
			shas[e.Path] = e.SHA256
		}
	}
	return shas, tree.Hashed
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestHashCache: a second manifest of an unchanged tree reads no file; a
// file rewritten with its size and mtime kept (its ctime moves), or
// replaced by another file (inode), is read again; a file changed just
// before it was hashed is not trusted later (the racy window).
func TestHashCache(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		p := filepath.Join(dir, "d", fmt.Sprintf("f%d.js", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("content %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	later := func() time.Time { return time.Now().Add(2 * RacyWindow) }
	first, hashed := manifestWith(t, cache, dir, later())
	if hashed != 5 {
		t.Fatalf("first manifest hashed %d files, want 5", hashed)
	}
	again, hashed := manifestWith(t, cache, dir, later())
	if hashed != 0 || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("unchanged tree: hashed %d files; digests %v, want %v", hashed, again, first)
	}

	// The same size and mtime, another content: only the ctime tells.
	time.Sleep(20 * time.Millisecond) // past the kernel clock's tick
	p := filepath.Join(dir, "d", "f1.js")
	if err := os.WriteFile(p, []byte("CONTENT 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, old, old)
	got, hashed := manifestWith(t, cache, dir, later())
	if hashed != 1 || got["d/f1.js"] != sha([]byte("CONTENT 1")) {
		t.Fatalf("rewritten with size and mtime kept: hashed %d, digest %s", hashed, got["d/f1.js"])
	}

	// Another file renamed over it, same size and mtime: a new inode.
	q := filepath.Join(dir, "new")
	os.WriteFile(q, []byte("Content 2"), 0o644)
	os.Chtimes(q, old, old)
	if err := os.Rename(q, filepath.Join(dir, "d", "f2.js")); err != nil {
		t.Fatal(err)
	}
	got, hashed = manifestWith(t, cache, dir, later())
	if hashed != 1 || got["d/f2.js"] != sha([]byte("Content 2")) {
		t.Fatalf("replaced by rename: hashed %d, digest %s", hashed, got["d/f2.js"])
	}

	// Hashed within the racy window of its change: read again next time.
	os.WriteFile(filepath.Join(dir, "d", "f3.js"), []byte("fresh"), 0o644)
	if _, hashed = manifestWith(t, cache, dir, time.Now()); hashed != 1 {
		t.Fatalf("changed file: hashed %d", hashed)
	}
	if _, hashed = manifestWith(t, cache, dir, later()); hashed != 1 {
		t.Fatalf("a file hashed within the racy window was trusted (hashed %d)", hashed)
	}
	if _, hashed = manifestWith(t, cache, dir, later()); hashed != 0 {
		t.Fatalf("hashed %d files of an unchanged tree", hashed)
	}
}
