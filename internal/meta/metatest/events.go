package metatest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

var eventTests = []test{
	{"Events/Filter", testEventsFilter},
}

func actions(evs []meta.Event) string {
	var a []string
	for _, e := range evs {
		a = append(a, e.Action)
	}
	return strings.Join(a, ",")
}

func ids(evs []meta.Event) []int64 {
	out := []int64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func testEventsFilter(t *testing.T, s meta.Store) {
	a, b := newDeployment(t, s, "a"), newDeployment(t, s, "b")
	publish(t, s, a.ID, "a1", true)
	vb := publish(t, s, b.ID, "b1", true)
	publish(t, s, a.ID, "a2", true)
	addDomain(t, s, "b.example.com", b.ID, &vb.ID)
	if _, err := s.Activate(t.Context(), a.ID, 1, "alice", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}

	all := events(t, s, meta.EventFilter{})
	if len(all) < 9 {
		t.Fatalf("%d events (%s), want at least 9", len(all), actions(all))
	}
	for i, e := range all {
		if i > 0 && e.ID <= all[i-1].ID {
			t.Errorf("events not in id order: %v", ids(all))
		}
		wantUTC(t, "event at", e.At)
		if len(e.Detail) > 0 && !json.Valid(e.Detail) {
			t.Errorf("event %d detail %q is not JSON", e.ID, e.Detail)
		}
	}
	if got := actions(events(t, s, meta.EventFilter{DeploymentID: a.ID})); !strings.HasSuffix(got,
		"publish,activate,publish,activate,rollback") {
		t.Errorf("events of a: %s", got)
	}

	filter := func(keep func(meta.Event) bool, limit int) []meta.Event {
		out := []meta.Event{}
		for _, e := range all {
			if keep(e) && (limit <= 0 || len(out) < limit) {
				out = append(out, e)
			}
		}
		return out
	}
	since := all[3].At
	for _, tc := range []struct {
		name string
		f    meta.EventFilter
		want []meta.Event
	}{
		{"deployment b", meta.EventFilter{DeploymentID: b.ID},
			filter(func(e meta.Event) bool { return e.DeploymentID == b.ID }, 0)},
		{"after id", meta.EventFilter{AfterID: all[2].ID}, all[3:]},
		{"limit", meta.EventFilter{Limit: 2}, all[:2]},
		{"since", meta.EventFilter{Since: since},
			filter(func(e meta.Event) bool { return !e.At.Before(since) }, 0)},
		{"all filters", meta.EventFilter{DeploymentID: a.ID, AfterID: all[1].ID, Since: since, Limit: 2},
			filter(func(e meta.Event) bool {
				return e.DeploymentID == a.ID && e.ID > all[1].ID && !e.At.Before(since)
			}, 2)},
		{"after the last", meta.EventFilter{AfterID: all[len(all)-1].ID}, []meta.Event{}},
	} {
		sameJSON(t, tc.name, events(t, s, tc.f), tc.want)
	}
}
