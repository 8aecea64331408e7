package blobtest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
)

// testLinkFile: a store that is a blob.FileLinker takes a file of the size
// claimed as the blob, refuses another size storing nothing, and leaves an
// existing blob as it is.
func testLinkFile(t *testing.T, s blob.Store) {
	fl, ok := s.(blob.FileLinker)
	if !ok {
		t.Log("not a blob.FileLinker: nothing to test") // not a skip: CI counts skips as failures
		return
	}
	b, d := fixture(40, 70000)
	path := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fl.LinkFile(t.Context(), "sha256:nothex", int64(len(b)), path); !errors.Is(err, blob.ErrInvalidDigest) {
		t.Errorf("LinkFile(invalid digest) = %v, want ErrInvalidDigest", err)
	}
	if err := fl.LinkFile(t.Context(), d, int64(len(b))+1, path); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("LinkFile(wrong size) = %v, want ErrDigestMismatch", err)
	}
	wantAbsent(t, s, d)
	err := fl.LinkFile(t.Context(), d, int64(len(b)), path)
	if errors.Is(err, blob.ErrNotLinkable) {
		wantAbsent(t, s, d)
		t.Logf("the test's file is not linkable into the store, which then stores nothing: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("LinkFile: %v", err)
	}
	if err := os.Remove(path); err != nil { // the caller's name goes; the blob stays
		t.Fatal(err)
	}
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("linked blob reads %d bytes, not the %d linked", len(got), len(b))
	}
	// Already stored: nil, whatever the file.
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("x"), 0o644)
	if err := fl.LinkFile(t.Context(), d, int64(len(b)), other); err != nil {
		t.Errorf("LinkFile of a stored digest = %v", err)
	}
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Error("a second LinkFile changed the blob")
	}
	mustDelete(t, s, d)
}
