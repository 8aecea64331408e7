package derive_test

import (
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
)

// TestRootfsOnceOnPostgres: two processes (two stores on one PostgreSQL
// schema, a Deriver each) asked at once derive once.
func TestRootfsOnceOnPostgres(t *testing.T) {
	u, _ := pgtest.FreshSchema(t)
	open := func() *postgres.Store {
		m, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	e := newEnvOn(t, t.TempDir(), open())
	e.push(t, plainImage(t, "pg"), "v1")
	dep, v := e.version(t, "v1")
	var calls atomic.Int32
	other := &env{reg: e.reg, meta: open(), blobs: e.blobs}
	shas := rootfsOf(t, []*derive.Deriver{e.deriver(t, &calls), other.deriver(t, &calls)}, 4, dep, v)
	if calls.Load() != 1 {
		t.Fatalf("%d derivations by two processes, want 1", calls.Load())
	}
	for _, s := range shas {
		if s != shas[0] {
			t.Fatalf("callers got different rootfs: %v", shas)
		}
	}
}
