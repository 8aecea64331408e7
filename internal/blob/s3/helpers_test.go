package s3_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 server comes from the environment, as /work/shared/tools/s3-server
// start prints it: CAIRN_TEST_S3_ENDPOINT (or S3_ENDPOINT) and AWS_*.
var server = sync.OnceValues(func() (string, string) {
	ep := cmp.Or(os.Getenv("CAIRN_TEST_S3_ENDPOINT"), os.Getenv("S3_ENDPOINT"))
	if ep == "" {
		return "", "no S3 server: set CAIRN_TEST_S3_ENDPOINT or S3_ENDPOINT (see /work/shared/tools/s3-server)"
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == "" {
		return "", "S3 server " + ep + " but no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", "bad S3 endpoint " + ep
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return "", "S3 server unreachable: " + err.Error()
	}
	c.Close()
	return ep, ""
})

// endpoint returns the S3 endpoint, skipping the test without one (failing
// it under CI=true).
func endpoint(t *testing.T) string {
	t.Helper()
	ep, why := server()
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return ep
}

// admin is a plain minio client for the test server, to look behind the Store.
func admin(t *testing.T) *minio.Client {
	t.Helper()
	u, _ := url.Parse(endpoint(t))
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewEnvAWS(),
		Secure: u.Scheme == "https", Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// freshBucket returns an unused bucket name, removed with everything in it
// when the test ends.
func freshBucket(t *testing.T) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "cairn-test-" + hex.EncodeToString(b[:])
	c := admin(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if ok, err := c.BucketExists(ctx, name); err != nil || !ok {
			return
		}
		for _, key := range leftovers(t, ctx, c, name) {
			c.RemoveObject(ctx, name, key, minio.RemoveObjectOptions{})
			c.RemoveIncompleteUpload(ctx, name, key)
		}
		if err := c.RemoveBucket(ctx, name); err != nil {
			t.Errorf("removing bucket %s: %v", name, err)
		}
	})
	return name
}

// leftovers lists every object and incomplete multipart upload in bucket.
func leftovers(t *testing.T, ctx context.Context, c *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing uploads in %s: %v", bucket, u.Err)
		}
		keys = append(keys, "multipart:"+u.Key)
	}
	return keys
}

// newStore opens a Store on bucket (created by New) under prefix, at the
// test server or at endpoint if given.
func newStore(t *testing.T, bucket, prefix, endpoint string, opts ...s3.Option) *s3.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A hung server fails a request in seconds, not the default minute.
	opts = append([]s3.Option{s3.WithTimeout(5 * time.Second)}, opts...)
	s, err := s3.New(ctx, "s3://"+bucket+"/"+prefix+"?endpoint="+url.QueryEscape(endpoint), opts...)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

// gen streams n deterministic pseudo-random bytes for seed.
func gen(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

func fixture(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(gen(seed, n))
	return b
}
