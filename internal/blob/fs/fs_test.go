package fs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/blobtest"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/opencontainers/go-digest"
)

func newStore(t *testing.T, dir string) *fs.Store {
	t.Helper()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir()) })
}

func wantTmpEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in tmp: %s", e.Name())
	}
}

func TestFailedPutsLeaveNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	b := bytes.Repeat([]byte("cairn"), 10000)
	d := digest.FromBytes(b)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for name, put := range map[string]func() error{
		"digest":    func() error { return s.Put(t.Context(), digest.FromString("x"), -1, bytes.NewReader(b)) },
		"size":      func() error { return s.Put(t.Context(), d, 7, bytes.NewReader(b)) },
		"cancelled": func() error { return s.Put(cancelled, d, -1, bytes.NewReader(b)) },
		"reader": func() error {
			return s.Put(t.Context(), d, -1, io.MultiReader(bytes.NewReader(b[:100]), iotest.ErrReader(os.ErrInvalid)))
		},
	} {
		if err := put(); err == nil {
			t.Errorf("%s: Put succeeded", name)
		}
	}
	wantTmpEmpty(t, dir)
	if err := s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	wantTmpEmpty(t, dir)
}

func TestLayoutAndURI(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	b := []byte("hello, cairn")
	d := digest.FromBytes(b)
	if err := s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sha256", d.Encoded()[:2], d.Encoded())
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("reading %s: %q, %v", path, got, err)
	}
	if got, want := s.URI(d), "file://"+path; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
	if got := s.URI("sha256:../x"); got != "" {
		t.Errorf("URI of an invalid digest = %q, want empty", got)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func TestNewRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	newStore(t, dir)
	stale := filepath.Join(dir, "tmp", "put-stale")
	fresh := filepath.Join(dir, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	newStore(t, dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file survived New: %v", err)
	}
	// A recent one may be another process's Put in progress.
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent temp file removed by New: %v", err)
	}
}

// TestSweepTemp: a running server sweeps the temporary files left by a Put
// that a crash interrupted (older than its cutoff) and spares younger ones.
func TestSweepTemp(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	old := filepath.Join(dir, "tmp", "put-killed")
	fresh := filepath.Join(dir, "tmp", "put-live")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	n, err := s.SweepTemp(t.Context(), time.Now().Add(-time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("SweepTemp = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("temp file older than the cutoff survived: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("temp file younger than the cutoff removed: %v", err)
	}
}
