package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/faultproxy"
	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/opencontainers/go-digest"
)

const (
	attempts = 4
	timeout  = 400 * time.Millisecond
)

var faults = []faultproxy.Fault{
	faultproxy.Status500, faultproxy.Reset, faultproxy.Stall, faultproxy.Truncate, faultproxy.StallBody,
}

// faulty returns a Store on bucket reached through a fault proxy (with
// short timeouts, so faults cost little time) and one reaching it directly.
func faulty(t *testing.T) (through, direct *s3.Store, p *faultproxy.Proxy) {
	t.Helper()
	ep, bucket := endpoint(t), freshBucket(t)
	p, err := faultproxy.New(ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	through = newStore(t, bucket, "f", p.URL(), s3.WithPartSize(5*mib),
		s3.WithRetry(attempts, 20*time.Millisecond), s3.WithTimeout(timeout))
	return through, newStore(t, bucket, "f", ep), p
}

// TestFaultyPut: under faults a Put fails or succeeds, and whatever is
// visible at the final key is the whole, right blob.
func TestFaultyPut(t *testing.T) {
	t.Parallel()
	through, direct, p := faulty(t)
	ok := 0
	for i, f := range faults {
		p.Set(faultproxy.Plan{Fault: f, Fraction: 0.2, Seed: uint64(i), Stall: 5 * time.Second})
		for j, n := range []int64{64 << 10, 11 * mib, 100, 6 * mib} {
			b := fixture(uint64(10*i+j), n)
			d := digest.FromBytes(b)
			size := n
			if j%2 == 1 {
				size = -1
			}
			err := through.Put(t.Context(), d, size, bytes.NewReader(b))
			if err == nil {
				ok++
			} else {
				t.Logf("fault %d, put %d: %v", f, j, err)
			}
			wantWholeOrNothing(t, direct, d, b, err == nil, fmt.Sprintf("fault %d, put %d (%v)", f, j, err))
		}
	}
	p.Clear()
	t.Logf("%d of %d Puts succeeded under faults; %d of %d requests faulted", ok, 4*len(faults), p.Injected(), p.Requests())
	if err := direct.List(t.Context(), func(i blob.Info) error { return fmt.Errorf("left %s", i.Digest) }); err != nil {
		t.Error(err)
	}
}

// wantWholeOrNothing checks that d is absent (allowed only if the Put
// failed) or reads back as exactly b, and then deletes it.
func wantWholeOrNothing(t *testing.T, s *s3.Store, d digest.Digest, b []byte, putOK bool, what string) {
	t.Helper()
	info, err := s.Stat(t.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		if putOK {
			t.Errorf("%s: Put succeeded but the blob is missing", what)
		}
		return
	}
	if err != nil || info.Size != int64(len(b)) {
		t.Fatalf("%s: Stat = %+v, %v; want %d bytes", what, info, err, len(b))
	}
	rc, err := s.Open(t.Context(), d, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("%s: the stored blob differs (%d bytes, %v)", what, len(got), err)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// TestFaultyOpen: under faults every read returns a prefix of the right
// bytes, and either all of them or an error.
func TestFaultyOpen(t *testing.T) {
	t.Parallel()
	through, direct, p := faulty(t)
	b := fixture(99, 3*mib)
	d := digest.FromBytes(b)
	if err := direct.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	whole, failed := 0, 0
	for i, f := range faults {
		p.Set(faultproxy.Plan{Fault: f, Fraction: 0.3, Seed: uint64(i), Stall: 5 * time.Second})
		for range 6 {
			off := rng.Int64N(int64(len(b)))
			n := rng.Int64N(int64(len(b))-off+1) - 1 // -1: to the end
			end := int64(len(b))
			if n >= 0 {
				end = off + n
			}
			rc, err := through.Open(t.Context(), d, off, n)
			if err != nil {
				t.Logf("fault %d: Open: %v", f, err)
				failed++
				continue
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Logf("fault %d: read: %v", f, err)
			}
			if !bytes.Equal(got, b[off:off+int64(len(got))]) {
				t.Fatalf("fault %d: Open(%d, %d) returned wrong bytes", f, off, n)
			}
			if err == nil && int64(len(got)) != end-off {
				t.Fatalf("fault %d: Open(%d, %d) returned %d bytes and no error", f, off, n, len(got))
			}
			if err == nil {
				whole++
			} else {
				failed++
			}
		}
	}
	p.Clear()
	t.Logf("%d whole reads, %d failed, %d of %d requests faulted", whole, failed, p.Injected(), p.Requests())
	if err := direct.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedBody: a body that always ends early is never a short
// success; the reader resumes attempts-1 times, then fails with
// io.ErrUnexpectedEOF.
func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	through, direct, p := faulty(t)
	b := fixture(5, 1*mib)
	d := digest.FromBytes(b)
	if err := direct.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []faultproxy.Fault{faultproxy.Truncate, faultproxy.StallBody} {
		p.Set(faultproxy.Plan{Fault: f, Fraction: 1, Stall: 5 * time.Second,
			Match: func(r *http.Request) bool { return r.Method == http.MethodGet }})
		p.ResetCounts()
		rc, err := through.Open(t.Context(), d, 0, -1)
		if err != nil {
			t.Fatalf("fault %d: Open: %v", f, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, b[:len(got)]) || len(got) == len(b) {
			t.Errorf("fault %d: read %d of %d bytes, %v; want a prefix and io.ErrUnexpectedEOF", f, len(got), len(b), err)
		}
		if n := p.Requests(); n != attempts {
			t.Errorf("fault %d: %d GETs, want %d", f, n, attempts)
		}
	}
	p.Clear()
	if err := direct.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}
