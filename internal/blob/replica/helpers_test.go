package replica

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// faulty is a region store that fails every call while broken, counts
// opens, and may run a hook before a Put.
type faulty struct {
	blob.Store
	dir       string
	broken    atomic.Bool
	opens     atomic.Int64
	beforePut func(d digest.Digest)
}

var errDown = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func (f *faulty) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if f.broken.Load() {
		return errDown
	}
	if f.beforePut != nil {
		f.beforePut(d)
	}
	return f.Store.Put(ctx, d, size, r)
}

func (f *faulty) Open(ctx context.Context, d digest.Digest, off, n int64) (io.ReadCloser, error) {
	f.opens.Add(1)
	if f.broken.Load() {
		return nil, errDown
	}
	return f.Store.Open(ctx, d, off, n)
}

func (f *faulty) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if f.broken.Load() {
		return blob.Info{}, errDown
	}
	return f.Store.Stat(ctx, d)
}

func (f *faulty) List(ctx context.Context, fn func(blob.Info) error) error {
	if f.broken.Load() {
		return errDown
	}
	return f.Store.List(ctx, fn)
}

func (f *faulty) Delete(ctx context.Context, d digest.Digest) error {
	if f.broken.Load() {
		return errDown
	}
	return f.Store.Delete(ctx, d)
}

// env is a set of fs regions (the first is the primary) and a SQLite
// metadata store; each store() is a fresh "process" over them.
type env struct {
	t       *testing.T
	db      string
	meta    *sqlite.Store
	names   []string
	regions map[string]*faulty
}

func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, db: filepath.Join(dir, "meta.db"), names: names, regions: map[string]*faulty{}}
	var err error
	if e.meta, err = sqlite.Open(e.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.meta.Close() })
	for _, n := range names {
		d := filepath.Join(dir, "blobs-"+n)
		st, err := fs.New(d)
		if err != nil {
			t.Fatal(err)
		}
		e.regions[n] = &faulty{Store: st, dir: d}
	}
	return e
}

// store returns a new Store over the regions, reading local first, with
// states not cached.
func (e *env) store(local string) *Store {
	e.t.Helper()
	var others []Region
	for _, n := range e.names[1:] {
		others = append(others, Region{n, e.regions[n]})
	}
	s, err := New(Region{e.names[0], e.regions[e.names[0]]}, others, e.meta, Options{Local: local, StateTTL: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func fastReplicator(s *Store) *Replicator {
	return NewReplicator(s, ReplicatorOptions{Poll: 20 * time.Millisecond, Lease: 2 * time.Second,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Backfill: -1})
}

// states returns d's replica states as "region=state/reason" by region.
func (e *env) states(d digest.Digest) map[string]string {
	e.t.Helper()
	st, err := e.meta.ReplicaStatuses(context.Background(), string(d))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for r, x := range st {
		out[r] = x.State + "/" + x.Error
	}
	return out
}

// rows counts every replica row.
func (e *env) rows() int {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM blob_replicas`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// count returns the number of blobs in region n.
func (e *env) count(n string) int {
	e.t.Helper()
	c := 0
	if err := e.regions[n].Store.List(context.Background(), func(blob.Info) error { c++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func put(t *testing.T, s blob.Store, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	if err := s.Put(t.Context(), d, int64(len(content)), bytes.NewReader([]byte(content))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return d
}

func readAll(t *testing.T, s blob.Store, d digest.Digest) string {
	t.Helper()
	rc, err := s.Open(t.Context(), d, 0, -1)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func syncAll(t *testing.T, r *Replicator) int {
	t.Helper()
	n, err := r.Sync(t.Context())
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return n
}

var _ meta.Replicas = (*sqlite.Store)(nil)
