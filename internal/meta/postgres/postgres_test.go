package postgres_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for metatest.MigrationRows

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/metatest"
	"github.com/cairnhq/cairn/internal/meta/migrations"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
)

func baseURL() string { return pgtest.URL() }

// admin connects to the test server (see pgtest.Admin).
func admin(t *testing.T) *pgx.Conn { return pgtest.Admin(t) }

// freshSchema creates an empty schema (see pgtest.FreshSchema) and, when t
// ends, checks that the stores opened on it left no connection behind.
func freshSchema(t *testing.T) (u, schema string) {
	t.Helper()
	u, schema = pgtest.FreshSchema(t)
	pgtest.CheckClosed(t, admin(t), schema)
	return u, schema
}

// open opens a Store on u, closed when t ends.
func open(t *testing.T, u string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAll runs every conformance suite under a ticking and a frozen clock,
// each subtest on a schema of its own.
func TestAll(t *testing.T) {
	admin(t) // skip once, not in every subtest
	metatest.RunAll(t, func(t *testing.T, now func() time.Time) meta.Store {
		u, _ := freshSchema(t)
		return open(t, u, postgres.WithClock(now))
	})
}

func TestReopen(t *testing.T) {
	u, _ := freshSchema(t)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := metatest.MigrationRows(t, "pgx", u)

	s = open(t, u, postgres.WithClock(func() time.Time { return time.Unix(1, 0) }))
	if got, err := s.GetDeployment(t.Context(), "site"); err != nil || got.ID != d.ID {
		t.Errorf("after reopening: %v, %v; want %s", got, err, d.ID)
	}
	if after := metatest.MigrationRows(t, "pgx", u); after != before || before == "" {
		t.Errorf("schema_migrations %q before reopening, %q after: migrations ran again", before, after)
	}
}

// TestConcurrentOpen opens a fresh schema from 4 goroutines at once, each
// with its own clock: all succeed, and one of them applied every migration.
func TestConcurrentOpen(t *testing.T) {
	u, schema := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			at := time.Unix(int64(i+1), 0)
			s, err := postgres.Open(t.Context(), u, postgres.WithClock(func() time.Time { return at }))
			if err == nil {
				_, err = s.ListDeployments(t.Context())
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	var n, stamps int
	err := admin(t).QueryRow(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT applied_at) FROM `+schema+`.schema_migrations`).
		Scan(&n, &stamps)
	ms, _ := migrations.All()
	if err != nil || n != len(ms) || stamps != 1 {
		t.Errorf("schema_migrations: %d rows by %d openers (%v), want %d rows by one", n, stamps, err, len(ms))
	}
}

func TestOpenMissingSchema(t *testing.T) {
	admin(t)
	p, _ := url.Parse(baseURL())
	q := p.Query()
	q.Set("search_path", "cairn_test_does_not_exist")
	p.RawQuery = q.Encode()
	if s, err := postgres.Open(t.Context(), p.String()); err == nil {
		s.Close()
		t.Fatal("Open with a search_path of no existing schema succeeded")
	}
}

// TestRegistryLocaleCollation runs the registry suite on a schema whose
// repository names and tags sort by a locale collation, as a database
// created with a locale does: the listings must still be in byte order
// (their COLLATE "C"), which a C or C.UTF-8 test database cannot tell.
func TestRegistryLocaleCollation(t *testing.T) {
	a := admin(t)
	var coll string
	for _, c := range []string{"en-x-icu", "en_US.utf8", "en_US"} {
		var n int
		if err := a.QueryRow(t.Context(), `SELECT count(*) FROM pg_collation WHERE collname = $1`, c).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			coll = c
			break
		}
	}
	if coll == "" {
		t.Skip("no locale collation (ICU or en_US) on this server")
	}
	metatest.RunRegistry(t, func(t *testing.T) meta.Store {
		u, schema := freshSchema(t)
		s := open(t, u)
		a := admin(t) // the subtests run in parallel: a connection each
		for _, col := range []string{"oci_repositories ALTER COLUMN name", "oci_tags ALTER COLUMN tag"} {
			stmt := fmt.Sprintf(`ALTER TABLE %s.%s TYPE text COLLATE %q`, schema, col, coll)
			if _, err := a.Exec(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		return s
	})
}
