package registry_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
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
