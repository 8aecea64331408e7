package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

// Put writes r to a file in DIR/tmp while verifying it, fsyncs it and then
// publishes it create-only under its digest. The temporary file is removed on
// every path, so a failed or cancelled Put leaves nothing behind.
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	v, err := blob.NewVerifier(d, size)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-*")
	if err != nil {
		return fmt.Errorf("blob/fs: put %s: %w", d, err)
	}
	defer func() {
		f.Close()           // already closed on success; the error is then meaningless
		os.Remove(f.Name()) // once published, the blob lives on under its final name
	}()

	// The verifier comes first so an oversized stream stops before it is written.
	if _, err := io.Copy(io.MultiWriter(v, f), ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("blob/fs: put %s: %w", d, err)
	}
	if err := v.Check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob/fs: put %s: %w", d, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("blob/fs: put %s: %w", d, err)
	}
	if err := publish(f.Name(), s.path(d)); err != nil {
		return fmt.Errorf("blob/fs: put %s: %w", d, err)
	}
	return nil
}

// publish gives the verified file tmp its final name without ever replacing an
// existing blob, and makes the new name durable.
func publish(tmp, final string) error {
	if _, err := os.Lstat(final); err == nil {
		return nil // already stored; the same digest names the same bytes
	}
	dir := filepath.Dir(final)
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			return nil // a concurrent Put of the same digest won
		}
		// Filesystems without hard links: rename is atomic too, and at worst it
		// replaces a concurrently published file with identical, verified bytes.
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// mkdirSynced creates dir and its parent (the algorithm directory) if missing,
// fsyncing the parent of each directory it creates. Directories are never
// removed, so a concurrent Put cannot lose the directory it is linking into.
func mkdirSynced(dir string) error {
	for _, p := range []string{filepath.Dir(dir), dir} {
		err := os.Mkdir(p, dirPerm)
		if errors.Is(err, iofs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader fails with the context's error once ctx is done, so cancelling a
// Put aborts it between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ blob.FileLinker = (*Store)(nil)

// LinkFile: see blob.FileLinker. The file gets the blob's name by a hard
// link (the caller's name stays until it removes it), so it must be on the
// store's file system.
func (s *Store) LinkFile(ctx context.Context, d digest.Digest, size int64, path string) error {
	if err := blob.ValidateDigest(d); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := s.path(d)
	if _, err := os.Lstat(final); err == nil {
		return nil // already stored; the same digest names the same bytes
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return fmt.Errorf("%w: %s: the file has %d bytes, not %d", blob.ErrDigestMismatch, d, fi.Size(), size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	dir := filepath.Dir(final)
	if err := mkdirSynced(dir); err != nil {
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	if err := os.Link(path, final); err != nil {
		switch {
		case errors.Is(err, iofs.ErrExist):
			return nil // a concurrent Put of the same digest won
		case errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EOPNOTSUPP):
			return fmt.Errorf("%w: %s: %v", blob.ErrNotLinkable, d, err)
		}
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("blob/fs: link %s: %w", d, err)
	}
	return nil
}
