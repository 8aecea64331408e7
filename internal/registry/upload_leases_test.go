package registry_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
)

// uploadClockEnv is a registry on SQLite and a fake clock, UploadTTL an hour.
func uploadClockEnv(t *testing.T) (*env, *fakeclock.Clock) {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"), sqlite.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := newEnvOn(t, dir, m, func(cfg *registry.Config) { cfg.Now, cfg.UploadTTL = c.Now, time.Hour })
	e.createOCI(t, "app")
	return e, c
}

func (e *env) leased(t *testing.T, now time.Time) map[string]bool {
	t.Helper()
	snap, err := e.meta.(meta.GC).GCSnapshot(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Leased
}

// TestUploadKeptAliveByEmptyPatches: a session kept alive by empty PATCHes
// keeps its parts leased, so the GC cannot take them before the PUT.
func TestUploadKeptAliveByEmptyPatches(t *testing.T) {
	a, c := uploadClockEnv(t)
	layer := []byte("a layer kept alive by empty PATCHes")
	d := digest.FromBytes(layer)
	loc := a.startUpload(t, "app/web")
	resp, body := a.do(t, "PATCH", loc, layer)
	wantCode(t, "PATCH", resp, body, 202, "")
	for i := range 3 {
		c.Add(50 * time.Minute)
		resp, body = a.do(t, "PATCH", loc, nil)
		wantCode(t, fmt.Sprintf("empty PATCH %d", i), resp, body, 202, "")
		// Until the session expires, its part stays leased.
		c.Add(time.Hour - time.Second)
		resp, body = a.do(t, "GET", loc, nil)
		wantCode(t, "GET before the expiry", resp, body, 204, "")
		if l := a.leased(t, c.Now()); !l[d.Encoded()] {
			t.Fatalf("after empty PATCH %d the part is not leased while the session lives: %v", i, l)
		}
		c.Add(-(time.Hour - time.Second))
	}
	resp, body = a.do(t, "PUT", loc+"?digest="+d.String(), nil)
	wantCode(t, "PUT", resp, body, 201, "")
}

// TestUploadPartLost: a part whose blob is gone at PUT time (the GC took
// it) ends the session with BLOB_UPLOAD_UNKNOWN, not a 500.
func TestUploadPartLost(t *testing.T) {
	a, _ := uploadClockEnv(t)
	for _, chunks := range [][]string{{"one part"}, {"first part, ", "second part"}} {
		var all []byte
		loc := a.startUpload(t, "app/web")
		for _, ch := range chunks {
			resp, body := a.do(t, "PATCH", loc, []byte(ch))
			wantCode(t, "PATCH", resp, body, 202, "")
			all = append(all, ch...)
		}
		if err := a.blobs.Delete(t.Context(), digest.FromString(chunks[len(chunks)-1])); err != nil {
			t.Fatal(err)
		}
		resp, body := a.do(t, "PUT", loc+"?digest="+digest.FromBytes(all).String(), nil)
		wantCode(t, fmt.Sprintf("PUT of %d parts, one lost", len(chunks)), resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
		resp, body = a.do(t, "GET", loc, nil)
		wantCode(t, "GET after the lost part", resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
	}
	if l := a.leased(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); len(l) != 0 {
		t.Errorf("leases left by the ended sessions: %v", l)
	}
}

// countingStore counts the lease transactions of HoldRelease.
type countingStore struct {
	*sqlite.Store
	holds atomic.Int64
}

func (s *countingStore) HoldRelease(ctx context.Context, sha, holder string, ttl time.Duration) (bool, error) {
	s.holds.Add(1)
	return s.Store.HoldRelease(ctx, sha, holder, ttl)
}

// TestUploadLeaseCost: a PATCH takes one lease for its part; the others
// are renewed together, not one transaction each.
func TestUploadLeaseCost(t *testing.T) {
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	cs := &countingStore{Store: m}
	a := newEnvOn(t, dir, cs, nil)
	a.createOCI(t, "app")
	const n = 30
	var all []byte
	loc := a.startUpload(t, "app/web")
	for i := range n {
		ch := fmt.Appendf(nil, "chunk %03d;", i)
		resp, body := a.do(t, "PATCH", loc, ch)
		wantCode(t, "PATCH", resp, body, 202, "")
		all = append(all, ch...)
	}
	if got := cs.holds.Load(); got > n {
		t.Errorf("%d chunks took %d lease transactions, want at most %d", n, got, n)
	}
	if l := a.leased(t, time.Now()); len(l) != n {
		t.Errorf("%d parts leased, want %d", len(l), n)
	}
	resp, body := a.do(t, "PUT", loc+"?digest="+digest.FromBytes(all).String(), nil)
	wantCode(t, "PUT", resp, body, 201, "")
	if l := a.leased(t, time.Now()); len(l) != 0 {
		t.Errorf("leases after the PUT: %v", l)
	}
}
