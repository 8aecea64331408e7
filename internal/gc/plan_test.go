package gc

import (
	"reflect"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// TestPlan: every state of a release against roots and the grace period,
// decided from a snapshot alone.
func TestPlan(t *testing.T) {
	now := time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)
	grace := time.Hour
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	active := "v-active"
	snap := &meta.GCSnapshot{
		Deployments: []meta.GCDeployment{{ID: "d", ActiveVersionID: &active, RetentionDays: 7, KeepVersions: 2}},
		Versions: []meta.GCVersion{
			{ID: "v-active", DeploymentID: "d", VersionNumber: 9, SHA256: "active", CreatedAt: *at(100 * 24 * time.Hour)},
			{ID: "v-keep", DeploymentID: "d", VersionNumber: 8, SHA256: "keep", CreatedAt: *at(90 * 24 * time.Hour), ArchivedAt: at(60 * 24 * time.Hour)},
			{ID: "v-pinned", DeploymentID: "d", VersionNumber: 7, SHA256: "pinned", CreatedAt: *at(90 * 24 * time.Hour), ArchivedAt: at(70 * 24 * time.Hour), Pinned: true},
			{ID: "v-recent", DeploymentID: "d", VersionNumber: 6, SHA256: "recent", CreatedAt: *at(90 * 24 * time.Hour), ArchivedAt: at(80 * 24 * time.Hour)},
			{ID: "v-old", DeploymentID: "d", VersionNumber: 5, SHA256: "old", CreatedAt: *at(95 * 24 * time.Hour), ArchivedAt: at(90 * 24 * time.Hour)},
			{ID: "v-back", DeploymentID: "d", VersionNumber: 4, SHA256: "back", CreatedAt: *at(95 * 24 * time.Hour), ArchivedAt: at(time.Hour)},
			{ID: "v-waiting", DeploymentID: "d", VersionNumber: 3, SHA256: "waiting", CreatedAt: *at(95 * 24 * time.Hour), ArchivedAt: at(91 * 24 * time.Hour)},
			{ID: "v-due", DeploymentID: "d", VersionNumber: 2, SHA256: "due", CreatedAt: *at(95 * 24 * time.Hour), ArchivedAt: at(92 * 24 * time.Hour)},
		},
		Releases: []meta.GCRelease{
			{SHA256: "active"}, {SHA256: "keep"}, {SHA256: "pinned"},
			{SHA256: "recent", CollectingAt: at(2 * time.Hour)}, // archived 80 days ago: past retention, marked past grace
			{SHA256: "old"},
			{SHA256: "back", CollectingAt: at(30 * time.Minute)}, // archived an hour ago: a root reaches it again
			{SHA256: "waiting", CollectingAt: at(30 * time.Minute)},
			{SHA256: "due", CollectingAt: at(2 * time.Hour)},
			{SHA256: "leased", CollectingAt: at(2 * time.Hour)},
			{SHA256: "registry"},
			{SHA256: "gone", CollectedAt: at(time.Hour)},
			{SHA256: "oci-own"},
		},
		Leased:   map[string]bool{"leased": true},
		External: map[string]bool{"registry": true},
	}
	got := plan(snap, now, grace, map[string]bool{"oci-own": true})
	want := Plan{
		Kept: []Kept{
			{"active", meta.Root{Reason: meta.RootActive, DeploymentID: "d", VersionID: "v-active", VersionNumber: 9}},
			{"keep", meta.Root{Reason: meta.RootKeepVersions, DeploymentID: "d", VersionID: "v-keep", VersionNumber: 8}},
			{"pinned", meta.Root{Reason: meta.RootDomain, DeploymentID: "d", VersionID: "v-pinned", VersionNumber: 7}},
			{"registry", meta.Root{Reason: meta.RootRegistry}},
		},
		Unmark:  []string{"back", "leased"},
		Mark:    []string{"old"},
		Waiting: []string{"waiting"},
		Due:     []string{"recent", "due"},
	}
	got.Roots = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n got %+v\nwant %+v", got, want)
	}
}

// TestPlanGrace: the same marked release waits or is due by its mark time
// and the grace period alone; with no grace a fresh mark is due at once on
// the next run.
func TestPlanGrace(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		marked time.Duration
		grace  time.Duration
		due    bool
	}{
		{59 * time.Minute, time.Hour, false},
		{time.Hour, time.Hour, true},
		{61 * time.Minute, time.Hour, true},
		{0, 0, true},
	} {
		m := now.Add(-c.marked)
		snap := &meta.GCSnapshot{Releases: []meta.GCRelease{{SHA256: "x", CollectingAt: &m}}}
		p := plan(snap, now, c.grace, nil)
		if due := len(p.Due) == 1; due != c.due || len(p.Waiting)+len(p.Due) != 1 {
			t.Errorf("marked %v ago, grace %v: %+v", c.marked, c.grace, p)
		}
	}
}
