// Package s3 is the blob.Store on an S3-compatible object store (AWS S3,
// MinIO, versitygw, …), built on minio-go.
//
// Layout in the bucket, under an optional PREFIX:
//
//	PREFIX/<alg>/<hex>           published blobs, never rewritten
//	PREFIX/uploads/<random>      large uploads in progress (never listed)
//
// A blob is visible only once an object exists under its final key, and that
// object is only ever created whole, from bytes already verified: a blob that
// fits in one part is hashed in memory before a single byte is sent and PUT
// (atomically) to its final key; a larger one is streamed to a staged object
// under uploads/ while it is hashed, and only after the hash matched is it
// copied server-side to its final key. Staged objects are deleted on every
// path; ones a crash left behind are removed by New once they are old.
//
// Failures: every request the store makes is tried at most DefaultAttempts
// times (WithRetry), for 5xx answers, connection resets and timeouts only;
// retry.go spells out the budget. Reads resume after a broken body within the same budget, and a
// body that ends early is an error wrapping io.ErrUnexpectedEOF, never a
// short success.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

var (
	_ blob.Store   = (*Store)(nil)
	_ blob.Locator = (*Store)(nil)
)

const (
	uploadsDir = "uploads/"
	// staleAge is how old a staged upload must be before New removes it; a
	// younger one may belong to a Put in progress in another process.
	staleAge = 24 * time.Hour
)

// algorithms are the digest algorithms stored, each under its own prefix.
var algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// Store is a blob.Store in one bucket (and key prefix) of an S3-compatible
// server. It is safe for concurrent use, also by several processes sharing
// the bucket.
type Store struct {
	c      *minio.Client // single attempt per call; retry.go retries
	up     *minio.Client // retries each part itself (its body is a rewindable buffer)
	bucket string
	prefix string // "" or ending in "/"
	cfg    config
}

// New connects to the bucket named by rawURL, creating the bucket if it is
// missing, and removes staged uploads older than a day. rawURL is
//
//	s3://BUCKET[/PREFIX][?endpoint=http://127.0.0.1:9000&region=us-east-1&path-style=true]
//
// endpoint defaults to AWS (https://s3.amazonaws.com); a custom endpoint uses
// path-style addressing unless path-style=false. Credentials come from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, then
// ~/.aws/credentials, then the EC2/ECS instance role. Unknown query
// parameters, a missing bucket and a malformed endpoint are errors.
func New(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
	})
	transport, err := minio.DefaultTransport(cfg.secure)
	if err != nil {
		return nil, fmt.Errorf("blob/s3: %w", err)
	}
	transport.ResponseHeaderTimeout = cfg.timeout
	rt := watchdog{rt: transport, timeout: cfg.timeout}
	client := func(tries int) (*minio.Client, error) {
		return minio.New(cfg.host, &minio.Options{
			Creds: creds, Secure: cfg.secure, Region: cfg.region, Transport: rt,
			BucketLookup: cfg.lookup, MaxRetries: tries,
		})
	}
	s := &Store{bucket: cfg.bucket, prefix: cfg.prefix, cfg: cfg}
	if s.c, err = client(1); err != nil {
		return nil, fmt.Errorf("blob/s3: %w", err)
	}
	if s.up, err = client(cfg.attempts); err != nil {
		return nil, fmt.Errorf("blob/s3: %w", err)
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	s.removeStale(ctx, time.Now().Add(-staleAge))
	return s, nil
}

// URI returns "s3://BUCKET/KEY" for d, or "" if d is not a valid digest. The
// object exists only while the blob is stored.
func (s *Store) URI(d digest.Digest) string {
	if blob.ValidateDigest(d) != nil {
		return ""
	}
	return "s3://" + s.bucket + "/" + s.key(d)
}

// key is d's object key; d must be valid.
func (s *Store) key(d digest.Digest) string {
	return s.prefix + string(d.Algorithm()) + "/" + d.Encoded()
}

// stagedKey returns a fresh key under PREFIX/uploads/.
func (s *Store) stagedKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails
	return s.prefix + uploadsDir + hex.EncodeToString(b[:])
}

// ensureBucket creates the bucket unless it exists.
func (s *Store) ensureBucket(ctx context.Context) error {
	var exists bool
	err := s.retry(ctx, "bucket "+s.bucket, func(ctx context.Context) (err error) {
		exists, err = s.c.BucketExists(ctx, s.bucket)
		return err
	})
	if err != nil {
		return fmt.Errorf("blob/s3: checking bucket %q at %s: %w", s.bucket, s.cfg.endpoint, err)
	}
	if exists {
		return nil
	}
	err = s.retry(ctx, "make bucket "+s.bucket, func(ctx context.Context) error {
		err := s.c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.cfg.region})
		if s3Error(err).Code == minio.BucketAlreadyOwnedByYou {
			return nil // created concurrently, or by an earlier attempt
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("blob/s3: creating bucket %q at %s: %w", s.bucket, s.cfg.endpoint, err)
	}
	return nil
}

// removeStale deletes staged objects and aborts multipart uploads under
// PREFIX/uploads/ that started before cutoff. It is best effort: a failure
// is logged, and the leftovers are invisible to the Store's API anyway.
func (s *Store) removeStale(ctx context.Context, cutoff time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listings if we stop early
	prefix := s.prefix + uploadsDir
	for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			s.cfg.log.Warn("blob/s3: listing stale uploads", "bucket", s.bucket, "err", o.Err)
			break
		}
		if o.LastModified.Before(cutoff) {
			if err := s.remove(ctx, o.Key); err != nil {
				s.cfg.log.Warn("blob/s3: removing stale upload", "key", o.Key, "err", err)
			}
		}
	}
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, prefix, true) {
		if u.Err != nil {
			s.cfg.log.Warn("blob/s3: listing stale multipart uploads", "bucket", s.bucket, "err", u.Err)
			return
		}
		if u.Initiated.Before(cutoff) {
			if err := (minio.Core{Client: s.c}).AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil {
				s.cfg.log.Warn("blob/s3: aborting stale upload", "key", u.Key, "err", err)
			}
		}
	}
}
