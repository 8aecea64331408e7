// Package fs is the filesystem blob.Store: one file per blob under a data
// directory, written to a temporary file, verified, fsynced and then published
// create-only under its digest.
//
// Layout:
//
//	DIR/<alg>/<first 2 hex>/<hex>   published blobs, never rewritten
//	DIR/tmp/                        writes in progress (same filesystem as the blobs)
//
// A blob is visible only once its file exists under its final name, and that
// name is created atomically (link or rename) after the bytes were verified, so
// readers never see partial or wrong content.
package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

var (
	_ blob.Store       = (*Store)(nil)
	_ blob.Locator     = (*Store)(nil)
	_ blob.TempSweeper = (*Store)(nil)
)

const (
	tmpDir  = "tmp"
	dirPerm = 0o750
	// staleAge is how long a temporary file must be untouched before New removes
	// it. A live Put keeps writing its file, so an old one was left by a crash;
	// a younger one may belong to another process sharing DIR. A running
	// server also sweeps them with its own age (SweepTemp).
	staleAge = time.Hour
)

// algorithms are the digest algorithms stored, each in its own directory.
var algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// Store is a blob.Store on a local directory. It is safe for concurrent use,
// also by several processes sharing the directory.
type Store struct {
	dir string // absolute
}

// New returns a Store in dir, creating dir (and dir/tmp) if needed, and removes
// temporary files that earlier runs left behind.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob/fs: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), dirPerm); err != nil {
		return nil, fmt.Errorf("blob/fs: %w", err)
	}
	s := &Store{dir: abs}
	if _, err := s.SweepTemp(context.Background(), time.Now().Add(-staleAge)); err != nil {
		return nil, err
	}
	return s, nil
}

// URI returns "file://" and the absolute path of d's file, or "" if d is not a
// valid digest. The file exists only while the blob is stored.
func (s *Store) URI(d digest.Digest) string {
	if blob.ValidateDigest(d) != nil {
		return ""
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(s.path(d))}).String()
}

// path is where d lives; d must be valid.
func (s *Store) path(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(s.dir, string(d.Algorithm()), hex[:2], hex)
}

// SweepTemp removes the files in DIR/tmp last modified before cutoff: the
// temporary files of Puts that a crash (kill -9) interrupted. A Put whose
// file is removed while it still runs fails (its link finds no file) and
// stores nothing, so the cutoff must lie further in the past than any Put
// pauses between two writes.
func (s *Store) SweepTemp(ctx context.Context, cutoff time.Time) (int, error) {
	dir := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("blob/fs: sweep %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		info, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("blob/fs: sweep %s: %w", dir, err)
		}
		if info.ModTime().After(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("blob/fs: sweep %s: %w", dir, err)
		}
		n++
	}
	return n, nil
}

// notFound maps a missing file to blob.ErrNotFound and wraps other errors.
func notFound(op string, d digest.Digest, err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w: %s", blob.ErrNotFound, d)
	}
	return fmt.Errorf("blob/fs: %s %s: %w", op, d, err)
}

// syncDir fsyncs a directory so entries created or renamed in it survive a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
