package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

// Open returns length bytes of d from offset (length < 0: to the end).
// The caller closes the reader.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := blob.ValidateDigest(d); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(d))
	if err != nil {
		return nil, notFound("open", d, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, notFound("open", d, err)
	}
	size := info.Size()
	// length > size-offset rather than offset+length > size: no overflow.
	if offset < 0 || offset > size || (length >= 0 && length > size-offset) {
		f.Close()
		return nil, fmt.Errorf("%w: offset %d, length %d, size %d", blob.ErrInvalidRange, offset, length, size)
	}
	if length < 0 {
		length = size - offset
	}
	return readCloser{io.NewSectionReader(f, offset, length), f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Stat returns d's size.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := blob.ValidateDigest(d); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	info, err := os.Stat(s.path(d))
	if err != nil {
		return blob.Info{}, notFound("stat", d, err)
	}
	return blob.Info{Digest: d, Size: info.Size()}, nil
}

// Delete removes d. Readers that already opened it keep reading the old file.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := blob.ValidateDigest(d); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(s.path(d)); err != nil {
		return notFound("delete", d, err)
	}
	return nil
}

// List calls fn for every stored blob. Blobs put or deleted during the walk may
// or may not be seen. Temporary files are never listed.
func (s *Store) List(ctx context.Context, fn func(blob.Info) error) error {
	for _, alg := range algorithms {
		algDir := filepath.Join(s.dir, string(alg))
		prefixes, err := readDir(algDir)
		if err != nil {
			return fmt.Errorf("blob/fs: list: %w", err)
		}
		for _, p := range prefixes {
			if len(p.Name()) != 2 || !p.IsDir() {
				continue
			}
			if err := s.listPrefix(ctx, alg, filepath.Join(algDir, p.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// listPrefix lists one DIR/<alg>/<xx> directory, skipping files whose name is
// not a valid digest in that directory.
func (s *Store) listPrefix(ctx context.Context, alg digest.Algorithm, dir string, fn func(blob.Info) error) error {
	files, err := readDir(dir)
	if err != nil {
		return fmt.Errorf("blob/fs: list: %w", err)
	}
	prefix := filepath.Base(dir)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(alg, f.Name())
		if !f.Type().IsRegular() || !strings.HasPrefix(f.Name(), prefix) || blob.ValidateDigest(d) != nil {
			continue
		}
		info, err := f.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // deleted during the walk
		}
		if err != nil {
			return fmt.Errorf("blob/fs: list: %w", err)
		}
		if err := fn(blob.Info{Digest: d, Size: info.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// readDir is os.ReadDir with a missing directory read as empty.
func readDir(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}
