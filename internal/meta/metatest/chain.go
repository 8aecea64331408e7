package metatest

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/audit"
	"github.com/cairnhq/cairn/internal/meta"
)

var chainTests = []test{
	{"Events/Chain", testChain},
	{"Events/ChainConcurrent", testChainConcurrent},
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// wantChain checks that the whole log is one hash chain from its first
// event, that LastEvent is its head, and returns the events.
func wantChain(t *testing.T, s meta.Store) []meta.Event {
	t.Helper()
	var all []meta.Event
	for after := int64(0); ; {
		page := events(t, s, meta.EventFilter{AfterID: after, Limit: 7}) // several pages
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	for i, e := range all {
		prev := ""
		if i > 0 {
			prev = all[i-1].Hash
		}
		if !hexHash.MatchString(e.Hash) || e.PrevHash != prev || meta.EventHash(e) != e.Hash {
			t.Errorf("event %d (%s): hash %q prev_hash %q, want prev_hash %q and hash %q",
				e.ID, e.Action, e.Hash, e.PrevHash, prev, meta.EventHash(e))
		}
	}
	c, err := audit.Verify(all)
	if err != nil || c.Events != len(all) || c.Unhashed != 0 {
		t.Errorf("audit.Verify: %+v, %v; want %d events, all hashed", c, err, len(all))
	}
	r, err := audit.Walk(t.Context(), audit.StoreSource(s), "")
	if err != nil || r.Events != len(all) {
		t.Errorf("audit.Walk: %+v, %v; want %d events", r, err, len(all))
	}
	if len(all) > 0 {
		head, err := s.LastEvent(t.Context())
		if err != nil {
			t.Fatalf("LastEvent: %v", err)
		}
		sameJSON(t, "LastEvent", head, all[len(all)-1])
	}
	return all
}

func testChain(t *testing.T, s meta.Store) {
	if _, err := s.LastEvent(t.Context()); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("LastEvent of an empty log: %v, want meta.ErrNotFound", err)
	}
	a := newDeployment(t, s, "a")
	v1 := publish(t, s, a.ID, "a1", true)
	publish(t, s, a.ID, "a2", true)
	publish(t, s, a.ID, "a3", false)
	addDomain(t, s, "a.example.com", a.ID, &v1.ID)
	if _, err := s.SetDomainVersion(t.Context(), "a.example.com", nil, "bob \"the\" <admin>\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Activate(t.Context(), a.ID, 1, "alice", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}
	a.RetentionDays = 7
	if err := s.UpdateDeployment(t.Context(), a, "ünïcødé"); err != nil {
		t.Fatal(err)
	}
	if c, ok := s.(Collector); ok {
		if err := c.MarkCollected(t.Context(), getVersionN(t, s, a.ID, 3).ID, time.Now()); err != nil {
			t.Fatalf("MarkCollected: %v", err)
		}
	}
	all := wantChain(t, s)
	if len(all) < 9 {
		t.Fatalf("%d events (%s), want at least 9", len(all), actions(all))
	}
	if all[0].PrevHash != "" {
		t.Errorf("first event's prev_hash %q, want \"\"", all[0].PrevHash)
	}
	// Each filter returns the stored hashes too.
	for _, e := range events(t, s, meta.EventFilter{DeploymentID: a.ID}) {
		if meta.EventHash(e) != e.Hash {
			t.Errorf("filtered event %d: hash %q does not match its contents", e.ID, e.Hash)
		}
	}
}

func getVersionN(t *testing.T, s meta.Store, depID string, n int64) *meta.Version {
	t.Helper()
	v, err := s.GetVersionByNumber(t.Context(), depID, n)
	if err != nil {
		t.Fatalf("GetVersionByNumber(%d): %v", n, err)
	}
	return v
}

// testChainConcurrent appends from 8 goroutines at once: the chain must
// still be one line, with no fork and no gap.
func testChainConcurrent(t *testing.T, s meta.Store) {
	const writers, rounds = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			errs <- chainWriter(t, s, fmt.Sprintf("w%d", w), rounds)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all := wantChain(t, s)
	// per writer: create, rounds × (publish + activate), a rollback, a domain add and repoint
	if want := writers * (1 + 2*rounds + 3); len(all) != want {
		t.Errorf("%d events (%s), want %d", len(all), actions(all), want)
	}
}

func chainWriter(t *testing.T, s meta.Store, name string, rounds int) error {
	ctx := t.Context()
	d := &meta.Deployment{Name: name, Kind: meta.KindStatic}
	if err := s.CreateDeployment(ctx, d, name); err != nil {
		return err
	}
	var first *meta.Version
	for i := range rounds {
		v, err := s.CreateVersion(ctx, meta.NewVersion{
			DeploymentID: d.ID, Release: release(fmt.Sprint(name, i)), Activate: true, Actor: name,
			Manifest: meta.Manifest{Files: 1, TotalBytes: 1, Entrypoint: "index.html"},
		})
		if err != nil {
			return err
		}
		if first == nil {
			first = v
		}
	}
	if _, err := s.Activate(ctx, d.ID, 1, name, meta.ActionRollback); err != nil {
		return err
	}
	host := name + ".example.com"
	if err := s.CreateDomain(ctx, &meta.Domain{Hostname: host, DeploymentID: d.ID}, name); err != nil {
		return err
	}
	_, err := s.SetDomainVersion(ctx, host, &first.ID, name)
	return err
}
