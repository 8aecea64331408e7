// Package blobtest is the conformance suite for blob.Store. Every backend and
// every wrapper (retry, metrics, replication, …) runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t) })
//	}
//
// It uses only the Store interface and real I/O. Each subtest gets a fresh
// store, removes what it stored, and fails if List is not empty afterwards.
package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

// Run runs the suite. newStore must return an empty store; it may register
// t.Cleanup to release it.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	cases := []struct {
		name string
		fn   func(*testing.T, blob.Store)
	}{
		{"PutStatOpen", testPutStatOpen},
		{"Range", testRange},
		{"SHA512", testSHA512},
		{"DigestMismatch", testDigestMismatch},
		{"SizeMismatch", testSizeMismatch},
		{"InvalidDigest", testInvalidDigest},
		{"PutExisting", testPutExisting},
		{"FailingReader", testFailingReader},
		{"CancelMidPut", testCancelMidPut},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"List", testList},
		{"ConcurrentPut", testConcurrentPut},
		{"Large", testLarge},
		{"LinkFile", testLinkFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			// Registered after newStore's own cleanups, so it runs before them.
			t.Cleanup(func() {
				if left := list(t, s); len(left) > 0 {
					t.Errorf("test left %d blob(s) behind: %v", len(left), left)
				}
			})
			c.fn(t, s)
		})
	}
}

// gen returns n deterministic pseudo-random bytes for seed, streamed.
func gen(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// fixture returns n bytes for seed and their sha256 digest.
func fixture(seed uint64, n int64) ([]byte, digest.Digest) {
	b, _ := io.ReadAll(gen(seed, n))
	return b, digest.FromBytes(b)
}

func mustPut(t *testing.T, s blob.Store, d digest.Digest, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("Put(%s): %v", d, err)
	}
}

func mustDelete(t *testing.T, s blob.Store, ds ...digest.Digest) {
	t.Helper()
	for _, d := range ds {
		if err := s.Delete(t.Context(), d); err != nil {
			t.Errorf("Delete(%s): %v", d, err)
		}
	}
}

// read returns the bytes Open(d, offset, length) yields.
func read(t *testing.T, s blob.Store, d digest.Digest, offset, length int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), d, offset, length)
	if err != nil {
		t.Fatalf("Open(%s, %d, %d): %v", d, offset, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", d, err)
	}
	return b
}

// list returns every listed blob's size by digest, failing on duplicates. It
// does not use t.Context(), which is already cancelled when cleanups run.
func list(t *testing.T, s blob.Store) map[digest.Digest]int64 {
	t.Helper()
	got := map[digest.Digest]int64{}
	err := s.List(context.Background(), func(i blob.Info) error {
		if _, dup := got[i.Digest]; dup {
			t.Errorf("List: %s listed twice", i.Digest)
		}
		got[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

// wantList checks that List returns exactly want.
func wantList(t *testing.T, s blob.Store, want map[digest.Digest]int64) {
	t.Helper()
	got := list(t, s)
	for d, n := range want {
		if m, ok := got[d]; !ok || m != n {
			t.Errorf("List: %s: got size %d (listed %v), want %d", d, m, ok, n)
		}
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			t.Errorf("List: unexpected %s", d)
		}
	}
}

// wantAbsent checks that d is invisible to Stat and Open.
func wantAbsent(t *testing.T, s blob.Store, d digest.Digest) {
	t.Helper()
	if info, err := s.Stat(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(%s) = %+v, %v; want ErrNotFound", d, info, err)
	}
	rc, err := s.Open(t.Context(), d, 0, -1)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(%s): %v; want ErrNotFound", d, err)
	}
}
