package blobtest

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

func testConcurrentPut(t *testing.T, s blob.Store) {
	b, d := fixture(40, 256<<10)
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: Put: %v", i, err)
		}
	}
	wantList(t, s, map[digest.Digest]int64{d: int64(len(b))})
	if got := read(t, s, d, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("blob differs after concurrent Puts")
	}
	mustDelete(t, s, d)
}

// testLarge streams a 20 MiB blob in and out without holding it in memory.
func testLarge(t *testing.T, s blob.Store) {
	const seed, size = 41, 20 << 20
	d, err := digest.SHA256.FromReader(gen(seed, size))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), d, size, gen(seed, size)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info, err := s.Stat(t.Context(), d); err != nil || info.Size != size {
		t.Errorf("Stat = %+v, %v; want %d bytes", info, err, size)
	}

	rc, err := s.Open(t.Context(), d, 0, -1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := digest.SHA256.FromReader(rc)
	rc.Close()
	if err != nil || got != d {
		t.Errorf("read back %s (%v), want %s", got, err, d)
	}

	// A range near the end matches the generator at the same offset.
	const off, n = size - 3<<20 - 12345, 1 << 20
	want := gen(seed, size)
	if _, err := io.CopyN(io.Discard, want, off); err != nil {
		t.Fatal(err)
	}
	wantRange, _ := io.ReadAll(io.LimitReader(want, n))
	if part := read(t, s, d, off, n); !bytes.Equal(part, wantRange) {
		t.Errorf("Open(%d, %d) returned other bytes", off, n)
	}
	mustDelete(t, s, d)
}
