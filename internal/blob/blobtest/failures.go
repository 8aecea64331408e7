package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

// wantPutErr puts r under d and size and checks that it fails with target
// (nil: any error) and stores nothing.
func wantPutErr(t *testing.T, s blob.Store, ctx context.Context, d digest.Digest, size int64, r io.Reader, target error) {
	t.Helper()
	err := s.Put(ctx, d, size, r)
	if err == nil || (target != nil && !errors.Is(err, target)) {
		t.Errorf("Put(%s, size %d): %v; want %v", d, size, err, target)
	}
	wantAbsent(t, s, d)
	wantList(t, s, nil)
}

func testDigestMismatch(t *testing.T, s blob.Store) {
	b, _ := fixture(30, 5000)
	_, d := fixture(31, 5000)
	wantPutErr(t, s, t.Context(), d, 5000, bytes.NewReader(b), blob.ErrDigestMismatch)
	wantPutErr(t, s, t.Context(), d, -1, bytes.NewReader(b), blob.ErrDigestMismatch)
	// The right bytes can still be stored afterwards.
	right, _ := fixture(31, 5000)
	mustPut(t, s, d, right)
	mustDelete(t, s, d)
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	b, d := fixture(32, 5000)
	wantPutErr(t, s, t.Context(), d, 4999, bytes.NewReader(b), blob.ErrDigestMismatch)
	wantPutErr(t, s, t.Context(), d, 5001, bytes.NewReader(b), blob.ErrDigestMismatch)
	wantPutErr(t, s, t.Context(), d, 0, bytes.NewReader(b), blob.ErrDigestMismatch)
	// Trailing bytes beyond a correct digest and size: Put must read to EOF.
	extra := append(append([]byte{}, b...), 'x')
	wantPutErr(t, s, t.Context(), d, 5000, bytes.NewReader(extra), blob.ErrDigestMismatch)
}

func testInvalidDigest(t *testing.T, s blob.Store) {
	b, d := fixture(33, 100)
	hex := d.Encoded()
	for _, bad := range []digest.Digest{
		"", "sha256", "sha256:", ":" + digest.Digest(hex), digest.Digest(hex),
		"sha256:abc", "sha256:" + digest.Digest(strings.ToUpper(hex)), d + "0", d + "/x",
		"sha256:../../../../../../etc/passwd", "sha256:" + digest.Digest(hex[:62]) + "/.",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		digest.SHA384.FromBytes(b), // well formed, but not a supported algorithm
	} {
		if err := s.Put(t.Context(), bad, 100, bytes.NewReader(b)); !errors.Is(err, blob.ErrInvalidDigest) {
			t.Errorf("Put(%q): %v; want ErrInvalidDigest", bad, err)
		}
		if _, err := s.Stat(t.Context(), bad); !errors.Is(err, blob.ErrInvalidDigest) {
			t.Errorf("Stat(%q): %v; want ErrInvalidDigest", bad, err)
		}
		if rc, err := s.Open(t.Context(), bad, 0, -1); !errors.Is(err, blob.ErrInvalidDigest) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Open(%q): %v; want ErrInvalidDigest", bad, err)
		}
		if err := s.Delete(t.Context(), bad); !errors.Is(err, blob.ErrInvalidDigest) {
			t.Errorf("Delete(%q): %v; want ErrInvalidDigest", bad, err)
		}
	}
	wantList(t, s, nil)
}

func testPutExisting(t *testing.T, s blob.Store) {
	b, d := fixture(34, 3000)
	mustPut(t, s, d, b)
	r := bytes.NewReader(b)
	if err := s.Put(t.Context(), d, 3000, r); err != nil {
		t.Errorf("second Put: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("second Put left %d bytes unread; it must consume and verify r", r.Len())
	}
	// Wrong bytes for an existing digest fail and leave the blob intact.
	other, _ := fixture(35, 3000)
	if err := s.Put(t.Context(), d, 3000, bytes.NewReader(other)); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("Put of wrong bytes over an existing blob: %v; want ErrDigestMismatch", err)
	}
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("blob changed after repeated Puts")
	}
	wantList(t, s, map[digest.Digest]int64{d: 3000})
	mustDelete(t, s, d)
}

var errBoom = errors.New("blobtest: reader failed")

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errBoom }

func testFailingReader(t *testing.T, s blob.Store) {
	b, d := fixture(36, 64<<10)
	// Fails midway.
	wantPutErr(t, s, t.Context(), d, int64(len(b)), io.MultiReader(bytes.NewReader(b[:40000]), failReader{}), nil)
	// Fails after every byte arrived (digest and size would match): still an error.
	wantPutErr(t, s, t.Context(), d, int64(len(b)), io.MultiReader(bytes.NewReader(b), failReader{}), nil)
	mustPut(t, s, d, b)
	mustDelete(t, s, d)
}

// cancelReader cancels its context once after bytes have been read, then
// keeps serving data in small reads.
type cancelReader struct {
	r      io.Reader
	after  int
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n >= c.after {
		c.cancel()
	}
	n, err := c.r.Read(p[:min(len(p), 16<<10)])
	c.n += n
	return n, err
}

func testCancelMidPut(t *testing.T, s blob.Store) {
	b, d := fixture(37, 1<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancelReader{r: bytes.NewReader(b), after: 100 << 10, cancel: cancel}
	wantPutErr(t, s, ctx, d, int64(len(b)), r, context.Canceled)

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	wantPutErr(t, s, ctx, d, int64(len(b)), bytes.NewReader(b), context.Canceled)
	mustPut(t, s, d, b)
	mustDelete(t, s, d)
}
