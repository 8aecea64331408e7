package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/blobtest"
	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/opencontainers/go-digest"
)

const mib = 1 << 20

func TestConformance(t *testing.T) {
	ep := endpoint(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return newStore(t, freshBucket(t), "cairn/blobs", ep)
	})
}

// TestMultipart streams 40 MiB of unknown size in 5 MiB parts (a staged
// multipart upload, then a server-side copy) without holding it in memory.
func TestMultipart(t *testing.T) {
	ep := endpoint(t)
	bucket := freshBucket(t)
	s := newStore(t, bucket, "", ep, s3.WithPartSize(5*mib))
	const seed, size = 7, 40 * mib
	d, _ := digest.SHA256.FromReader(gen(seed, size))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := s.Put(t.Context(), d, -1, gen(seed, size)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Put of %d MiB allocated %.1f MiB", size/mib, float64(alloc)/mib)
	if alloc > size*3/4 { // holding the blob whole would take all of size
		t.Errorf("Put of %d MiB allocated %d MiB; it should stream", size/mib, alloc/mib)
	}

	rc, err := s.Open(t.Context(), d, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := digest.SHA256.FromReader(rc)
	rc.Close()
	if err != nil || got != d {
		t.Errorf("read back %s (%v), want %s", got, err, d)
	}
	if info, err := s.Stat(t.Context(), d); err != nil || info.Size != size {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if keys := leftovers(t, t.Context(), admin(t), bucket); len(keys) != 1 || keys[0] != "sha256/"+d.Encoded() {
		t.Errorf("bucket holds %v; want only sha256/%s", keys, d.Encoded())
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// TestCompose publishes through ComposeObject, the path for blobs over 5 GiB.
func TestCompose(t *testing.T) {
	ep := endpoint(t)
	defer s3.SetMaxCopySize(1 * mib)()
	s := newStore(t, freshBucket(t), "p", ep, s3.WithPartSize(5*mib))
	b := fixture(8, 12*mib)
	d := digest.FromBytes(b)
	if err := s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, err := s.Open(t.Context(), d, 5*mib-3, 2*mib)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, b[5*mib-3:7*mib-3]) {
		t.Errorf("range across parts: %d bytes, %v", len(got), err)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func TestCreatesBucketAndLayout(t *testing.T) {
	ep := endpoint(t)
	bucket, c := freshBucket(t), admin(t)
	if ok, err := c.BucketExists(t.Context(), bucket); err != nil || ok {
		t.Fatalf("bucket exists before New: %v, %v", ok, err)
	}
	s := newStore(t, bucket, "a/b/", ep)
	if ok, err := c.BucketExists(t.Context(), bucket); err != nil || !ok {
		t.Fatalf("bucket missing after New: %v, %v", ok, err)
	}
	newStore(t, bucket, "a/b", ep) // an existing bucket is fine

	b := []byte("hello, cairn")
	d := digest.FromBytes(b)
	if err := s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	key := "a/b/sha256/" + d.Encoded()
	if keys := leftovers(t, t.Context(), c, bucket); len(keys) != 1 || keys[0] != key {
		t.Errorf("bucket holds %v, want [%s]", keys, key)
	}
	if got, want := s.URI(d), "s3://"+bucket+"/"+key; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
	if got := s.URI("sha256:../x"); got != "" {
		t.Errorf("URI of an invalid digest = %q", got)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// TestFailedPutLeavesNothing: no object, staged object or multipart upload
// survives a failed Put, small (one request) or large (staged).
func TestFailedPutLeavesNothing(t *testing.T) {
	ep := endpoint(t)
	bucket := freshBucket(t)
	var logged bytes.Buffer
	s := newStore(t, bucket, "x", ep, s3.WithPartSize(5*mib),
		s3.WithLogger(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	small, large := fixture(1, 1000), fixture(2, 12*mib)
	wrong := digest.FromString("something else")
	cancelled, cancel := context.WithCancel(t.Context())
	for name, put := range map[string]func() error{
		"small wrong digest": func() error { return s.Put(t.Context(), wrong, -1, bytes.NewReader(small)) },
		"large wrong digest": func() error { return s.Put(t.Context(), wrong, -1, bytes.NewReader(large)) },
		"large wrong size": func() error {
			return s.Put(t.Context(), digest.FromBytes(large), int64(len(large))+1, bytes.NewReader(large))
		},
		"large trailing byte": func() error {
			r := io.MultiReader(bytes.NewReader(large), strings.NewReader("x"))
			return s.Put(t.Context(), digest.FromBytes(large), int64(len(large)), r)
		},
		"large cancelled": func() error {
			r := io.MultiReader(bytes.NewReader(large[:7*mib]), cancelOnRead{cancel}, bytes.NewReader(large[7*mib:]))
			return s.Put(cancelled, digest.FromBytes(large), -1, r)
		},
	} {
		err := put()
		if err == nil {
			t.Errorf("%s: Put succeeded", name)
		}
		if !errors.Is(err, blob.ErrDigestMismatch) && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v; want a digest mismatch or cancellation", name, err)
		}
		if keys := leftovers(t, t.Context(), admin(t), bucket); len(keys) > 0 {
			t.Errorf("%s: left %v in the bucket", name, keys)
		}
	}
	if logged.Len() > 0 { // New's and Put's clean-ups work against this server
		t.Errorf("warnings logged:\n%s", logged.String())
	}
}

// cancelOnRead cancels a context when it is read, and yields nothing.
type cancelOnRead struct{ cancel context.CancelFunc }

func (c cancelOnRead) Read([]byte) (int, error) { c.cancel(); return 0, nil }

func TestBadURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                   "scheme",
		"http://bucket":                      "scheme",
		"s3://":                              "missing bucket",
		"s3:bucket":                          "missing bucket",
		"s3:///prefix":                       "missing bucket",
		"s3://Bad_Bucket":                    "bucket name",
		"s3://bucket:9000":                   "port",
		"s3://key:secret@bucket":             "credentials",
		"s3://bucket/a//b":                   "prefix",
		"s3://bucket/../b":                   "prefix",
		"s3://bucket?endpoint=ftp://x":       "endpoint",
		"s3://bucket?endpoint=":              "endpoint",
		"s3://bucket?endpoint=http://h/path": "endpoint",
		"s3://bucket?region=a&region=b":      "given 2 times",
		"s3://bucket?regoin=x":               `unknown parameter "regoin"`,
		"s3://bucket?endpoint=http://127.0.0.1:1&path-style=maybe": "path-style",
	} {
		_, err := s3.New(t.Context(), raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q): %v; want an error about %q", raw, err, want)
		}
	}
	_, err := s3.New(t.Context(), "s3://bucket?endpoint=http://127.0.0.1:1", s3.WithPartSize(mib))
	if err == nil || !strings.Contains(err.Error(), "part size") {
		t.Errorf("New with a 1 MiB part size: %v", err)
	}
}
