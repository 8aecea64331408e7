package blobtest

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

func testPutStatOpen(t *testing.T, s blob.Store) {
	b, d := fixture(1, 4096)
	wantAbsent(t, s, d)
	mustPut(t, s, d, b)
	info, err := s.Stat(t.Context(), d)
	if err != nil || info != (blob.Info{Digest: d, Size: int64(len(b))}) {
		t.Errorf("Stat = %+v, %v; want %s, %d bytes", info, err, d, len(b))
	}
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("Open whole: got %d bytes, not the %d put", len(got), len(b))
	}

	// Unknown size (-1) and the empty blob.
	b2, d2 := fixture(2, 100)
	if err := s.Put(t.Context(), d2, -1, bytes.NewReader(b2)); err != nil {
		t.Fatalf("Put size -1: %v", err)
	}
	empty := digest.FromBytes(nil)
	mustPut(t, s, empty, nil)
	if got := read(t, s, empty, 0, -1); len(got) != 0 {
		t.Errorf("empty blob reads %d bytes", len(got))
	}
	wantList(t, s, map[digest.Digest]int64{d: 4096, d2: 100, empty: 0})
	mustDelete(t, s, d, d2, empty)
}

func testRange(t *testing.T, s blob.Store) {
	b, d := fixture(3, 1000)
	mustPut(t, s, d, b)
	for _, r := range []struct{ off, n int64 }{
		{0, -1}, {0, 1000}, {100, 200}, {900, -1}, {999, 1}, {500, 0}, {1000, -1}, {1000, 0},
	} {
		end := int64(len(b))
		if r.n >= 0 {
			end = r.off + r.n
		}
		if got := read(t, s, d, r.off, r.n); !bytes.Equal(got, b[r.off:end]) {
			t.Errorf("Open(%d, %d): got %d bytes, want b[%d:%d]", r.off, r.n, len(got), r.off, end)
		}
	}
	for _, r := range []struct{ off, n int64 }{
		{-1, -1}, {-1, 10}, {1001, -1}, {1001, 0}, {990, 20}, {0, 1001}, {1, 1000}, {10, math.MaxInt64},
	} {
		rc, err := s.Open(t.Context(), d, r.off, r.n)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, blob.ErrInvalidRange) {
			t.Errorf("Open(%d, %d): %v; want ErrInvalidRange", r.off, r.n, err)
		}
	}
	_, missing := fixture(4, 10)
	if _, err := s.Open(t.Context(), missing, 0, 5); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open missing with a range: %v; want ErrNotFound", err)
	}
	mustDelete(t, s, d)
}

func testSHA512(t *testing.T, s blob.Store) {
	b, _ := fixture(5, 3000)
	d := digest.SHA512.FromBytes(b)
	mustPut(t, s, d, b)
	info, err := s.Stat(t.Context(), d)
	if err != nil || info != (blob.Info{Digest: d, Size: 3000}) {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if got := read(t, s, d, 1000, 500); !bytes.Equal(got, b[1000:1500]) {
		t.Errorf("Open(1000, 500) of a sha512 blob returned other bytes")
	}
	wantAbsent(t, s, digest.SHA256.FromBytes(b)) // names differ by algorithm
	wantList(t, s, map[digest.Digest]int64{d: 3000})
	mustDelete(t, s, d)
}

func testDelete(t *testing.T, s blob.Store) {
	b, d := fixture(6, 500)
	mustPut(t, s, d, b)
	mustDelete(t, s, d)
	wantAbsent(t, s, d)
	if err := s.Delete(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}
	// A deleted digest can be stored again.
	mustPut(t, s, d, b)
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("re-put after Delete reads other bytes")
	}
	mustDelete(t, s, d)
}

func testDeleteMissing(t *testing.T, s blob.Store) {
	_, d := fixture(7, 10)
	if err := s.Delete(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Delete missing: %v; want ErrNotFound", err)
	}
}

func testList(t *testing.T, s blob.Store) {
	wantList(t, s, nil)
	want := map[digest.Digest]int64{}
	for i, n := range []int64{10, 2000, 0} {
		b, d := fixture(uint64(10+i), n)
		mustPut(t, s, d, b)
		want[d] = n
	}
	b, _ := fixture(20, 64)
	d512 := digest.SHA512.FromBytes(b)
	mustPut(t, s, d512, b)
	want[d512] = 64
	wantList(t, s, want)

	// An error from fn stops the walk and is returned.
	stop, calls := errors.New("stop"), 0
	err := s.List(t.Context(), func(blob.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn: %v after %d calls; want stop after 1", err, calls)
	}

	mustDelete(t, s, d512)
	delete(want, d512)
	wantList(t, s, want)
	for d := range want {
		mustDelete(t, s, d)
	}
}
