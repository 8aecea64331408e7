package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// Open returns length bytes of d from offset (length < 0: to the end) with
// one ranged GET, whose answer also gives the size the range is checked
// against. The reader resumes after a broken body and fails with an error
// wrapping io.ErrUnexpectedEOF if the bytes end early. It reads with ctx;
// the caller closes it.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := blob.ValidateDigest(d); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if length == 0 || offset < 0 || length > math.MaxInt64-offset {
		return s.openEmpty(ctx, d, offset, length) // no byte to GET, or no valid range
	}
	key, end := s.key(d), int64(-1)
	if length > 0 {
		end = offset + length
	}
	var b io.ReadCloser
	var total int64
	err := s.retry(ctx, "get", func(ctx context.Context) (err error) {
		b, total, err = s.get(ctx, key, offset, end)
		return err
	})
	switch {
	case notFound(err):
		return nil, fmt.Errorf("%w: %s", blob.ErrNotFound, d)
	case s3Error(err).StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return s.openEmpty(ctx, d, offset, length) // offset >= size
	case err != nil:
		return nil, fmt.Errorf("blob/s3: open %s: %w", d, err)
	}
	if err := checkRange(offset, length, total); err != nil {
		b.Close()
		return nil, err
	}
	if end < 0 {
		end = total
	}
	return &reader{s: s, ctx: ctx, d: d, key: key, next: offset, end: end, b: b}, nil
}

// openEmpty answers the requests that read no byte: it checks the range
// against Stat and returns an empty reader if it is valid.
func (s *Store) openEmpty(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, d)
	if err != nil {
		return nil, err
	}
	if err := checkRange(offset, length, info.Size); err != nil {
		return nil, err
	}
	if length != 0 && offset != info.Size {
		return nil, fmt.Errorf("blob/s3: open %s: server refused range %d+%d of %d bytes", d, offset, length, info.Size)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// checkRange returns an error wrapping blob.ErrInvalidRange unless offset
// and length (< 0: to the end) fit a blob of size bytes.
func checkRange(offset, length, size int64) error {
	// length > size-offset rather than offset+length > size: no overflow.
	if offset < 0 || offset > size || (length >= 0 && length > size-offset) {
		return fmt.Errorf("%w: offset %d, length %d, size %d", blob.ErrInvalidRange, offset, length, size)
	}
	return nil
}

// Stat returns d's size, from a HEAD request.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := blob.ValidateDigest(d); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	info, err := s.stat(ctx, s.key(d))
	if notFound(err) {
		return blob.Info{}, fmt.Errorf("%w: %s", blob.ErrNotFound, d)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("blob/s3: stat %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: info.Size}, nil
}

func (s *Store) stat(ctx context.Context, key string) (info minio.ObjectInfo, err error) {
	err = s.retry(ctx, "stat", func(ctx context.Context) (err error) {
		info, err = s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	return info, err
}

// Delete removes d. S3's DELETE succeeds for missing keys, so a HEAD first
// tells ErrNotFound; a concurrent Delete may still make both succeed.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if _, err := s.Stat(ctx, d); err != nil {
		return err // also validates d
	}
	if err := s.remove(ctx, s.key(d)); err != nil {
		return fmt.Errorf("blob/s3: delete %s: %w", d, err)
	}
	return nil
}

// List calls fn for every blob under PREFIX/<alg>/ (never uploads/). A
// listing that breaks resumes after the last key seen, so no blob is
// reported twice. Blobs put or deleted during the walk may or may not be seen.
func (s *Store) List(ctx context.Context, fn func(blob.Info) error) error {
	for _, alg := range algorithms {
		prefix, last := s.prefix+string(alg)+"/", ""
		err := s.retry(ctx, "list", func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel() // ends minio's listing when fn stops the walk
			opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: true, StartAfter: last}
			for o := range s.c.ListObjectsIter(ctx, s.bucket, opts) {
				if o.Err != nil {
					return o.Err
				}
				last = o.Key
				d := digest.NewDigestFromEncoded(alg, strings.TrimPrefix(o.Key, prefix))
				if blob.ValidateDigest(d) != nil {
					continue // not ours
				}
				if err := fn(blob.Info{Digest: d, Size: o.Size}); err != nil {
					return callerError{err}
				}
			}
			return nil
		})
		if ce, ok := errors.AsType[callerError](err); ok {
			return ce.err
		}
		if err != nil {
			return fmt.Errorf("blob/s3: list: %w", err)
		}
	}
	return nil
}

// callerError carries fn's error through Store.retry, which must neither
// retry nor wrap it; it deliberately has no Unwrap.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }
