package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/registry"
)

// The PostgreSQL helpers follow internal/meta/postgres/postgres_test.go:
// each test gets a fresh schema, dropped when it ends.

// defaultPostgresURL is the test server; CAIRN_TEST_POSTGRES overrides it.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func postgresURL() string {
	if u := os.Getenv("CAIRN_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultPostgresURL
}

// postgresAdmin connects to the test server, closed when t ends.
// Unreachable: the test is skipped, or fails under CI=true.
func postgresAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set CAIRN_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// freshSchema creates an empty schema, dropped when t ends (after the
// stores opened later are closed), and returns a URL whose connections use
// it.
func freshSchema(t testing.TB) string {
	t.Helper()
	a := postgresAdmin(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "cairn_test_" + hex.EncodeToString(b[:])
	if _, err := a.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := a.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	p, err := url.Parse(postgresURL())
	if err != nil {
		t.Fatalf("CAIRN_TEST_POSTGRES must be a URL: %v", err)
	}
	q := p.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	p.RawQuery = q.Encode()
	return p.String()
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
	t.Run("ConcurrentFirstPushes", func(t *testing.T) { testConcurrentFirstPushes(t, newPostgresEnv) })
	t.Run("ConformanceSuite", func(t *testing.T) { testConformanceSuite(t, newPostgresEnv) })
}
