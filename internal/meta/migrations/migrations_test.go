package migrations

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

func TestRebind(t *testing.T) {
	q := `SELECT a FROM t WHERE b = ? AND c < ? LIMIT ?`
	if got := SQLite.Rebind(q); got != q {
		t.Errorf("sqlite: %q", got)
	}
	if got, want := Postgres.Rebind(q), `SELECT a FROM t WHERE b = $1 AND c < $2 LIMIT $3`; got != want {
		t.Errorf("postgres: %q, want %q", got, want)
	}
}

func TestAll(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations %v, want 1 first", ms)
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("%s after %s", m.Name, ms[i-1].Name)
		}
		for _, d := range []Dialect{SQLite, Postgres} {
			for _, stmt := range m.Statements(d) {
				if strings.Contains(stmt, "{{") || strings.Contains(stmt, "--") {
					t.Errorf("%s (%s): unexpanded template or comment in %q", m.Name, d.Name, stmt)
				}
			}
		}
	}
}

func TestApplyOnce(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := func() int64 { return 42 }
	first, err := Apply(t.Context(), c, SQLite, now)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := All()
	if len(first) != len(ms) || !slices.IsSorted(first) {
		t.Errorf("first Apply applied %v, want all %d in order", first, len(ms))
	}
	again, err := Apply(t.Context(), c, SQLite, now)
	if err != nil || len(again) != 0 {
		t.Errorf("second Apply applied %v (%v), want none", again, err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN
		('deployments', 'versions', 'releases', 'domains', 'events')`).Scan(&n); err != nil || n != 5 {
		t.Errorf("%d of 5 tables (%v)", n, err)
	}
}
