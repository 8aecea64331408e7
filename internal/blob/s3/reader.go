package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// get sends one GET of key for bytes [off, end) (end < 0: to the end of the
// object) and returns the body positioned at off and the object's size.
func (s *Store) get(ctx context.Context, key string, off, end int64) (io.ReadCloser, int64, error) {
	var opts minio.GetObjectOptions
	switch {
	case end >= 0:
		opts.SetRange(off, end-1) // end > off here
	case off > 0:
		opts.SetRange(off, 0) // bytes=off-
	}
	rc, info, hdr, err := minio.Core{Client: s.c}.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, 0, err
	}
	total, start := info.Size, int64(0)
	if cr := hdr.Get("Content-Range"); cr != "" {
		var last int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &last, &total); err != nil || start != off {
			rc.Close()
			return nil, 0, fmt.Errorf("blob/s3: GET %s: unexpected Content-Range %q for offset %d", key, cr, off)
		}
	} else if off > 0 && off <= total {
		// The server ignored Range and sent the whole object: skip to off.
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			return nil, 0, err
		}
	}
	return rc, total, nil
}

// reader returns the bytes [next, end) of a blob. When the body breaks
// (reset, stall, early end) it asks again for the bytes still missing, at
// most cfg.attempts-1 times per reader; a digest always names the same bytes,
// so the pieces join up. Errors are sticky; a short read is never a success.
type reader struct {
	s         *Store
	ctx       context.Context
	d         digest.Digest
	key       string
	next, end int64
	b         io.ReadCloser // nil between a failure and the next GET
	resumes   int
	err       error
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, r.err
	}
	for r.err == nil {
		if r.next >= r.end {
			return 0, io.EOF
		}
		if r.b == nil {
			b, _, err := r.s.get(r.ctx, r.key, r.next, r.end)
			if err != nil {
				r.fail(err)
				continue
			}
			r.b = b
		}
		n, err := r.b.Read(p[:min(int64(len(p)), r.end-r.next)])
		r.next += int64(n)
		if err != nil && (err != io.EOF || r.next < r.end) {
			r.b.Close()
			r.b = nil
			r.fail(err)
		}
		if n > 0 {
			return n, nil // a failure surfaces (or is healed) on the next call
		}
	}
	return 0, r.err
}

// fail records why the bytes stopped, and either waits to resume or makes
// the failure final.
func (r *reader) fail(err error) {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the body ended before the range did
	}
	if cerr := r.ctx.Err(); cerr != nil {
		err = cerr
	} else if transient(r.ctx, err) && r.resumes < r.s.cfg.attempts-1 {
		r.resumes++
		r.s.cfg.log.Debug("blob/s3: resuming read", "key", r.key, "at", r.next, "err", err)
		if err = r.s.wait(r.ctx, r.resumes); err == nil {
			return
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err)
	}
	r.err = fmt.Errorf("blob/s3: read %s: stopped at byte %d of %d: %w", r.d, r.next, r.end, err)
}

func (r *reader) Close() error {
	if r.err == nil {
		r.err = errors.New("blob/s3: read after Close")
	}
	if r.b != nil {
		b := r.b
		r.b = nil
		return b.Close()
	}
	return nil
}
