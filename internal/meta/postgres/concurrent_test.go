package postgres_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
)

// TestConcurrentActivate activates versions from two Stores at once: in the
// end exactly one version is active, the one the deployment points at, and
// every activation that changed the pointer appended its event.
func TestConcurrentActivate(t *testing.T) {
	u, _ := freshSchema(t)
	stores := []*postgres.Store{open(t, u), open(t, u)}
	d := deployment(t, stores[0], "site")
	for i := range 4 {
		publish(t, stores[0], d.ID, fmt.Sprint("v", i), false)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := stores[i%2].Activate(t.Context(), d.ID, int64(i%4+1), "x", meta.ActionActivate)
			if err != nil {
				t.Errorf("Activate v%d: %v", i%4+1, err)
			}
		})
	}
	wg.Wait()
	vs, err := stores[1].ListVersions(t.Context(), d.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := stores[1].GetDeployment(t.Context(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, v := range vs {
		if v.Status == meta.StatusActive {
			active++
			if got.ActiveVersionID == nil || *got.ActiveVersionID != v.ID {
				t.Errorf("v%d active, deployment points at %v", v.VersionNumber, got.ActiveVersionID)
			}
		}
	}
	if active != 1 {
		t.Errorf("%d active versions, want 1", active)
	}
	evs, err := stores[0].ListEvents(t.Context(), meta.EventFilter{DeploymentID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	var prev *string // each activate event moves the pointer on from where the last one left it
	for _, e := range evs {
		if e.Action != meta.ActionActivate {
			continue
		}
		var c struct{ Before, After *string }
		if err := json.Unmarshal(e.Detail, &c); err != nil || deref(c.Before) != deref(prev) {
			t.Errorf("event %d: detail %s, want before %q", e.ID, e.Detail, deref(prev))
		}
		prev = c.After
	}
	if deref(prev) != deref(got.ActiveVersionID) {
		t.Errorf("last activate event ends at %q, deployment at %q", deref(prev), deref(got.ActiveVersionID))
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
