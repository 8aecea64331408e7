package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// maxCopySize is the largest object one CopyObject may copy (S3's limit);
// larger ones are copied part by part with ComposeObject. A variable so
// tests can exercise that path without 5 GiB of data.
var maxCopySize int64 = 5 << 30

// cleanupTimeout bounds deleting a staged upload after its Put has ended,
// which runs even if the Put's context was cancelled.
const cleanupTimeout = time.Minute

// Put reads r to EOF through a blob.Verifier and stores it under d,
// create-only and all-or-nothing (see the package comment). If d is already
// stored, r is still consumed and verified, and nothing is uploaded. A Put
// holds at most about three parts (WithPartSize) in memory.
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	v, err := blob.NewVerifier(d, size)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.put(ctx, d, size, &verifyingReader{ctx: ctx, r: r, v: v}, v); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr // whatever broke first, the caller cancelled
		}
		return fmt.Errorf("blob/s3: put %s: %w", d, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, d digest.Digest, size int64, vr *verifyingReader, v *blob.Verifier) error {
	key := s.key(d)
	exists, err := s.exists(ctx, key)
	if err != nil {
		return err
	}
	if exists { // the same digest names the same bytes
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return err
		}
		return v.Check()
	}
	if size > s.cfg.partSize {
		return s.putStaged(ctx, key, size, vr, vr, v)
	}
	// Read up to one part, and a byte more to tell "one part" from "more".
	head, err := readHead(vr, size, s.cfg.partSize+1)
	if err != nil {
		return err
	}
	n := int64(len(head))
	if n > s.cfg.partSize {
		return s.putStaged(ctx, key, size, io.MultiReader(bytes.NewReader(head), vr), vr, v)
	}
	// All of it is in memory and verified before a byte is sent; a single
	// PUT is atomic, so it goes straight to the final key.
	if err := v.Check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = s.up.PutObject(ctx, s.bucket, key, bytes.NewReader(head), n, s.putOptions())
	return err
}

// putStaged streams body (which ends with vr) to a staged object, checks v,
// and only then copies the staged object to key. The staged object is
// removed on every path.
func (s *Store) putStaged(ctx context.Context, key string, size int64, body io.Reader, vr *verifyingReader, v *blob.Verifier) error {
	staged := s.stagedKey()
	_, err := s.up.PutObject(ctx, s.bucket, staged, body, size, s.putOptions())
	uploaded := err == nil
	if err == nil {
		// minio stops after size bytes: trailing bytes or a late read error
		// must still fail the Put.
		_, err = io.Copy(io.Discard, vr)
	}
	if err == nil || (vr.eof && size >= 0) { // a short body is a size mismatch
		if cerr := v.Check(); cerr != nil {
			err = cerr
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.publish(ctx, staged, key, v.Written())
	}
	s.discard(ctx, staged, !uploaded)
	return err
}

// publish copies the verified staged object to key unless key exists.
func (s *Store) publish(ctx context.Context, staged, key string, n int64) error {
	if exists, err := s.exists(ctx, key); err != nil || exists {
		return err // a concurrent Put published the same bytes meanwhile
	}
	return s.retry(ctx, "copy", func(ctx context.Context) error {
		dst := minio.CopyDestOptions{Bucket: s.bucket, Object: key}
		src := minio.CopySrcOptions{Bucket: s.bucket, Object: staged}
		var err error
		if n > maxCopySize {
			_, err = s.c.ComposeObject(ctx, dst, src)
		} else {
			_, err = s.c.CopyObject(ctx, dst, src)
		}
		return err
	})
}

// discard deletes a staged object and, if its upload failed, any multipart
// upload minio could not abort. It runs on after ctx is cancelled.
func (s *Store) discard(ctx context.Context, staged string, failed bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.remove(ctx, staged); err != nil {
		s.cfg.log.Warn("blob/s3: removing staged upload", "bucket", s.bucket, "key", staged, "err", err)
	}
	if !failed {
		return
	}
	err := s.retry(ctx, "abort upload", func(ctx context.Context) error {
		return s.c.RemoveIncompleteUpload(ctx, s.bucket, staged)
	})
	if err != nil {
		s.cfg.log.Warn("blob/s3: aborting failed upload", "bucket", s.bucket, "key", staged, "err", err)
	}
}

// remove deletes key; a missing key is no error.
func (s *Store) remove(ctx context.Context, key string) error {
	return s.retry(ctx, "remove", func(ctx context.Context) error {
		return s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	})
}

// exists reports whether key is stored.
func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.stat(ctx, key)
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: uint64(s.cfg.partSize)}
}

// readHead reads r up to EOF or limit bytes. It allocates the size it is
// told (size >= 0), or 64 KiB and then all of limit at once.
func readHead(r io.Reader, size, limit int64) ([]byte, error) {
	n := min(64<<10, limit)
	if size >= 0 {
		n = min(size+1, limit)
	}
	buf := make([]byte, 0, n)
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, limit), buf...)
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// verifyingReader feeds everything read from r to v, stops with ctx, and
// fails (stickily) as soon as v or r does.
type verifyingReader struct {
	ctx context.Context
	r   io.Reader
	v   *blob.Verifier
	eof bool
	err error
}

func (vr *verifyingReader) Read(p []byte) (int, error) {
	if vr.err != nil {
		return 0, vr.err
	}
	if err := vr.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := vr.r.Read(p)
	if _, werr := vr.v.Write(p[:n]); werr != nil {
		vr.err = werr
		return 0, werr
	}
	switch {
	case err == io.EOF:
		vr.eof = true
	case err != nil:
		vr.err = err
	}
	return n, err
}
