package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/audit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/metatest"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// open opens the database at path, closed when t ends.
func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAll runs every conformance suite under a ticking and a frozen clock.
func TestAll(t *testing.T) {
	metatest.RunAll(t, func(t *testing.T, now func() time.Time) meta.Store {
		return open(t, filepath.Join(t.TempDir(), "meta.db"), sqlite.WithClock(now))
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := open(t, path)
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := metatest.MigrationRows(t, "sqlite", path)

	s = open(t, path)
	got, err := s.GetDeployment(t.Context(), "site")
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if got.ID != d.ID {
		t.Errorf("after reopening: id %s, want %s", got.ID, d.ID)
	}
	if after := metatest.MigrationRows(t, "sqlite", path); after != before || before == "" {
		t.Errorf("schema_migrations %q before reopening, %q after: migrations ran again", before, after)
	}
}

// TestOddPath opens a file whose path needs escaping in a file: URI.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c#d%e")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "meta.db")
	s := open(t, path)
	if err := s.CreateDeployment(t.Context(), &meta.Deployment{Name: "site", Kind: meta.KindStatic}, "x"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %s: %v", path, err)
	}
}

func TestWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	open(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q (%v), want wal", mode, err)
	}
}

// TestChainAfterUpgrade: events appended before migration 0005 have no
// hashes; the chain starts at the first event appended after it.
func TestChainAfterUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := open(t, path)
	for _, name := range []string{"old1", "old2"} {
		if err := s.CreateDeployment(t.Context(), &meta.Deployment{Name: name, Kind: meta.KindStatic}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET hash = '', prev_hash = ''`); err != nil { // as 0005 leaves them
		t.Fatal(err)
	}
	if err := s.CreateDeployment(t.Context(), &meta.Deployment{Name: "new", Kind: meta.KindStatic}, "t"); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Walk(t.Context(), audit.StoreSource(s), "")
	if err != nil || r.Events != 3 || r.Unhashed != 2 || r.FirstID != 3 {
		t.Errorf("Walk: %+v, %v; want 3 events, the chain from event 3", r, err)
	}
	evs, _ := s.ListEvents(t.Context(), meta.EventFilter{AfterID: 2})
	if len(evs) != 1 || evs[0].PrevHash != "" || evs[0].Hash != meta.EventHash(evs[0]) {
		t.Errorf("first chained event: %+v", evs)
	}
}
