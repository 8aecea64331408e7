package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/audit"
	"github.com/cairnhq/cairn/internal/meta"
)

// TestChainAfterUpgrade: events appended before migration 0005 have no
// hashes; the chain starts at the first event appended after it.
func TestChainAfterUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := open(t, path)
	defer s.Close()
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
