package registry_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
	"github.com/cairnhq/cairn/internal/registry"
)

// The PostgreSQL helpers follow internal/meta/postgres/postgres_test.go:
// each test gets a fresh schema, dropped when it ends.

// postgresAdmin connects to the test server (see pgtest.Admin).
func postgresAdmin(t testing.TB) *pgx.Conn { return pgtest.Admin(t) }

// freshSchema creates an empty schema, dropped when t ends, and returns a
// URL whose connections use it.
func freshSchema(t testing.TB) string {
	u, _ := pgtest.FreshSchema(t)
	return u
}

// newPostgresEnv starts a registry on a PostgreSQL store in a fresh schema.
func newPostgresEnv(t testing.TB, edit func(*registry.Config)) *env {
	t.Helper()
	u := freshSchema(t)
	m, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return newEnvOn(t, t.TempDir(), m, edit)
}

// TestPostgres runs the main registry tests on a PostgreSQL metadata store.
func TestPostgres(t *testing.T) {
	postgresAdmin(t) // skip once, not in every subtest
	t.Run("PushPullImages", func(t *testing.T) { testPushPullImages(t, newPostgresEnv) })
	t.Run("TagPushPublishesVersions", func(t *testing.T) { testTagPushPublishesVersions(t, newPostgresEnv) })
	t.Run("ActivateOnPush", func(t *testing.T) { testActivateOnPush(t, newPostgresEnv) })
	t.Run("NestedRepositoryRefused", func(t *testing.T) { testNestedRepositoryRefused(t, newPostgresEnv) })
	t.Run("ConcurrentFirstPushes", func(t *testing.T) { testConcurrentFirstPushes(t, newPostgresEnv) })
	t.Run("ConformanceSuite", func(t *testing.T) { testConformanceSuite(t, newPostgresEnv) })
}
