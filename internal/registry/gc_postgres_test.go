package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/registry"
)

// newPostgresGCEnv is newGCEnv on a PostgreSQL store in a fresh schema.
func newPostgresGCEnv(t *testing.T) *gcEnv {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := postgres.Open(t.Context(), freshSchema(t), postgres.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := newEnvOn(t, t.TempDir(), m, func(cfg *registry.Config) { cfg.Now = c.Now })
	e.createOCI(t, "app")
	return &gcEnv{env: e, clock: c}
}

// TestPostgresGC runs the registry's collection tests on PostgreSQL.
func TestPostgresGC(t *testing.T) {
	postgresAdmin(t)
	t.Run("CollectsOCIVersions", func(t *testing.T) { testGCCollectsOCIVersions(t, newPostgresGCEnv) })
	t.Run("OCINoGrace", func(t *testing.T) { testGCOCINoGrace(t, newPostgresGCEnv) })
	t.Run("CollectOCIRechecks", func(t *testing.T) { testGCCollectOCIRechecks(t, newPostgresGCEnv) })
	t.Run("PushRacingCollection", func(t *testing.T) { testGCPushRacingCollection(t, newPostgresGCEnv) })
}

// TestPostgresCollectOCILocksBlobs: an OCI collection holds the sha256 lock
// of each blob it deletes (the lock HoldRelease takes a lease under) until
// it commits, so a push cannot lease a blob between the collection's
// re-check and its deletion, see the link and commit a manifest on it.
func TestPostgresCollectOCILocksBlobs(t *testing.T) {
	postgresAdmin(t)
	ctx := t.Context()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	u := freshSchema(t)
	m, err := postgres.Open(ctx, u, postgres.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := &gcEnv{env: newEnvOn(t, t.TempDir(), m, func(cfg *registry.Config) { cfg.Now = c.Now }), clock: c}
	e.createOCI(t, "app")
	e.image(t, "app/x", "lonely", nil, "lonely-layer") // linked, never referenced
	c.Add(2 * time.Hour)
	og := e.meta.(meta.OCIGC)
	g, err := og.OCIGraph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	layer := digest.FromBytes([]byte("lonely-layer"))
	col := meta.OCICollect{Graph: g, Blobs: []meta.OCIRef{{Repository: "app/x", Digest: layer.String()}},
		Cutoff: c.Now().Add(-time.Hour), MarkedBefore: c.Now(), Now: c.Now(), Holder: "test", TTL: time.Minute}

	// Another session holds the layer's sha256 lock, as HoldRelease does
	// while it takes a lease.
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7802, hashtext(current_schema() || ':' || $1))`, layer.Encoded()); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res *meta.OCICollection
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := og.CollectOCI(ctx, col)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the collection did not wait for the layer's sha256 lock: %+v, %v", r.res, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	tx.Rollback(ctx)
	select {
	case r := <-done:
		if r.err != nil || r.res.Cancelled != "" || r.res.Blobs != 1 {
			t.Fatalf("after the lock: %+v, %v; want the layer's link deleted", r.res, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the collection did not finish once the lock was released")
	}
}
