package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// Retry budget. Every request is tried at most cfg.attempts times in total:
//
//   - Stat, Open, Delete, List, the server-side copy, clean-up and bucket
//     creation go through Store.retry with a client whose own retry is off
//     (minio MaxRetries = 1), so attempts = cfg.attempts per call;
//   - the staged upload (and the single PUT of a small blob) goes through a
//     client with MaxRetries = cfg.attempts, because only minio holds the
//     rewindable buffer of each part: each part, and the initiate and
//     complete requests, is tried at most cfg.attempts times, with minio's
//     own backoff (200 ms doubling, capped at 1 s). A failure reading the
//     body of a successful answer there is not retried: the Put fails;
//   - a body that breaks mid-read is resumed from the byte it stopped at, at
//     most cfg.attempts-1 times per Open.
//
// Below that, net/http may resend a GET or HEAD that broke on a reused
// keep-alive connection before any answer, on another connection (so at
// most once per idle connection), and minio sleeps up to 200 ms after a
// failed request even when it will not retry it.
//
// Each attempt is bounded by cfg.timeout (see watchdog): no progress sending
// the request body, no response headers, or no bytes within one read of
// the response body for that long fails it as transient. Waits between
// attempts are jittered and end with ctx.

// errStalled is the cause when a response body delivered nothing for cfg.timeout.
var errStalled = errors.New("blob/s3: response stalled")

// retry calls op until it succeeds, fails permanently, ctx ends, or it has
// been tried cfg.attempts times. It returns op's last error.
func (s *Store) retry(ctx context.Context, what string, op func(context.Context) error) error {
	var err error
	for i := range s.cfg.attempts {
		if i > 0 {
			s.cfg.log.Debug("blob/s3: retrying", "op", what, "attempt", i+1, "err", err)
			if werr := s.wait(ctx, i); werr != nil {
				return werr
			}
		}
		if err = op(ctx); err == nil || !transient(ctx, err) {
			return err
		}
	}
	return fmt.Errorf("%s: gave up after %d attempts: %w", what, s.cfg.attempts, err)
}

// wait sleeps before retry number i (1, 2, …): a random duration up to
// backoff·2^(i-1), capped at 8·backoff ("full jitter"). It returns ctx's
// error if ctx ends first.
func (s *Store) wait(ctx context.Context, i int) error {
	ceil := s.cfg.backoff << min(i-1, 3)
	if ceil <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(rand.N(ceil) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transient reports whether err may go away if the request is repeated: a
// 5xx, 408 or 429 answer, a broken or refused connection, a timeout or a
// stalled body. Nothing is transient once ctx has ended.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	if r := s3Error(err); r.StatusCode != 0 {
		return r.StatusCode >= 500 || r.StatusCode == http.StatusRequestTimeout ||
			r.StatusCode == http.StatusTooManyRequests || r.Code == "SlowDown" || r.Code == "RequestTimeout"
	}
	var nerr net.Error
	var uerr *url.Error
	return errors.Is(err, errStalled) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &nerr) && nerr.Timeout()) || errors.As(err, &uerr)
}

// notFound reports whether err is S3's "no such key".
func notFound(err error) bool {
	r := s3Error(err)
	return r.Code == minio.NoSuchKey || (r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket)
}

// s3Error returns the S3 error response err wraps, or a zero one.
func s3Error(err error) minio.ErrorResponse {
	var r minio.ErrorResponse
	errors.As(err, &r)
	return r
}
