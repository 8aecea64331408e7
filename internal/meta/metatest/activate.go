package metatest

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

var activateTests = []test{
	{"Activate/OnPublish", testActivateOnPublish},
	{"Activate/Rollback", testActivateRollback},
	{"Activate/ReadyVersion", testActivateReady},
	{"Activate/AlreadyActive", testActivateAlreadyActive},
	{"Activate/Errors", testActivateErrors},
	{"Activate/PreviousActive", testPreviousActive},
	{"Activate/Collected", testActivateCollected},
}

// wantActive checks the deployment's pointer and the statuses of its versions.
func wantActive(t *testing.T, s meta.Store, depID string, active *meta.Version, archived ...*meta.Version) {
	t.Helper()
	d := getDeployment(t, s, depID)
	wantPtr(t, "active_version_id", d.ActiveVersionID, active.ID)
	if v := getVersion(t, s, active.ID); v.Status != meta.StatusActive || v.ArchivedAt != nil {
		t.Errorf("v%d: status %s, archived_at %v, want active and no archived_at", v.VersionNumber, v.Status, v.ArchivedAt)
	}
	for _, a := range archived {
		if v := getVersion(t, s, a.ID); v.Status != meta.StatusArchived || v.ArchivedAt == nil {
			t.Errorf("v%d: status %s, archived_at %v, want archived with archived_at", v.VersionNumber, v.Status, v.ArchivedAt)
		} else {
			wantUTC(t, "archived_at", *v.ArchivedAt)
		}
	}
}

// wantMove checks that e moved the deployment's pointer from before to after.
func wantMove(t *testing.T, e meta.Event, action, actor, before string, after *meta.Version) {
	t.Helper()
	if e.Action != action || e.Actor != actor || e.VersionID != after.ID || e.ReleaseSHA256 != after.ArtifactSHA256 {
		t.Errorf("event = %+v, want %s by %s of %s", e, action, actor, after.ID)
	}
	wantUTC(t, "event at", e.At)
	b, a := beforeAfter(t, e)
	wantPtr(t, "detail.before", b, before)
	wantPtr(t, "detail.after", a, after.ID)
}

func testActivateOnPublish(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	if v1.Status != meta.StatusActive {
		t.Errorf("returned status %s, want active", v1.Status)
	}
	wantActive(t, s, d.ID, v1)
	evs := events(t, s, meta.EventFilter{DeploymentID: d.ID})
	if n := len(evs); n < 2 || evs[n-2].Action != meta.ActionPublish {
		t.Fatalf("events %+v, want … publish, activate", evs)
	}
	wantMove(t, evs[len(evs)-1], meta.ActionActivate, "tester", "", v1)

	v2 := publish(t, s, d.ID, "two", true)
	wantActive(t, s, d.ID, v2, v1)
	wantMove(t, lastEvent(t, s, d.ID), meta.ActionActivate, "tester", v1.ID, v2)
}

func testActivateRollback(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	got, err := s.Activate(t.Context(), d.ID, 1, "alice", meta.ActionRollback)
	if err != nil {
		t.Fatal(err)
	}
	wantPtr(t, "returned active_version_id", got.ActiveVersionID, v1.ID)
	sameJSON(t, "returned deployment", got, getDeployment(t, s, d.ID))
	wantActive(t, s, d.ID, v1, v2)
	wantMove(t, lastEvent(t, s, d.ID), meta.ActionRollback, "alice", v2.ID, v1)

	if _, err := s.Activate(t.Context(), d.ID, 2, "bob", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, d.ID, v2, v1)
	wantMove(t, lastEvent(t, s, d.ID), meta.ActionActivate, "bob", v1.ID, v2)
}

func testActivateReady(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", false)
	v2 := publish(t, s, d.ID, "two", false)
	if _, err := s.Activate(t.Context(), d.ID, 1, "alice", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, d.ID, v1)
	wantMove(t, lastEvent(t, s, d.ID), meta.ActionActivate, "alice", "", v1)
	if v := getVersion(t, s, v2.ID); v.Status != meta.StatusReady || v.ArchivedAt == nil {
		t.Errorf("never activated v2: status %s archived_at %v, want ready, retention counted from publish", v.Status, v.ArchivedAt)
	}
	// Active once, then replaced: archived, and never ready again.
	if _, err := s.Activate(t.Context(), d.ID, 2, "alice", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, d.ID, v2, v1)
}

func testActivateAlreadyActive(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	n := len(events(t, s, meta.EventFilter{}))
	got, err := s.Activate(t.Context(), d.ID, 1, "alice", meta.ActionActivate)
	if err != nil {
		t.Fatal(err)
	}
	wantPtr(t, "active_version_id", got.ActiveVersionID, v1.ID)
	wantActive(t, s, d.ID, v1)
	if m := len(events(t, s, meta.EventFilter{})); m != n {
		t.Errorf("activating the active version appended %d events, want none", m-n)
	}
}

func testActivateErrors(t *testing.T, s meta.Store) {
	ctx := t.Context()
	d := newDeployment(t, s, "site")
	publish(t, s, d.ID, "one", true)
	_, err := s.Activate(ctx, d.ID, 2, "x", meta.ActionActivate)
	wantErr(t, "missing version", err, meta.ErrNotFound)
	_, err = s.Activate(ctx, "dep_nope", 1, "x", meta.ActionActivate)
	wantErr(t, "missing deployment", err, meta.ErrNotFound)
	_, err = s.Activate(ctx, d.ID, 1, "x", "promote")
	wantErr(t, "unknown action", err, meta.ErrInvalid)
}

func testPreviousActive(t *testing.T, s meta.Store) {
	ctx := t.Context()
	d := newDeployment(t, s, "site")
	_, err := s.PreviousActive(ctx, d.ID)
	wantErr(t, "no versions", err, meta.ErrNotFound)
	_, err = s.PreviousActive(ctx, "dep_nope")
	wantErr(t, "unknown deployment", err, meta.ErrNotFound)
	v1 := publish(t, s, d.ID, "one", true)
	_, err = s.PreviousActive(ctx, d.ID)
	wantErr(t, "one active version", err, meta.ErrNotFound)

	want := func(step string, v *meta.Version) {
		t.Helper()
		p, err := s.PreviousActive(ctx, d.ID)
		if err != nil || p.ID != v.ID {
			t.Errorf("%s: PreviousActive = %v, %v; want v%d", step, p, err, v.VersionNumber)
		}
	}
	v2 := publish(t, s, d.ID, "two", true)
	want("v2 active", v1)
	publish(t, s, d.ID, "three", false) // ready, never active
	want("v3 published", v1)
	if _, err := s.Activate(ctx, d.ID, 1, "x", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}
	want("rolled back to v1", v2)
	if _, err := s.Activate(ctx, d.ID, 2, "x", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	want("v2 again", v1)
	v4 := publish(t, s, d.ID, "four", true)
	want("v4 active", v2)
	if _, err := s.Activate(ctx, d.ID, 1, "x", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}
	want("back to v1", v4)
	// v4 was activated after v2: only the order of activations may decide.
	if _, err := s.Activate(ctx, d.ID, 2, "x", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	want("v2 after v1", v1)
}

func testActivateCollected(t *testing.T, s meta.Store) {
	ctx := t.Context()
	c := collector(t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	wantErr(t, "collect the active version", c.MarkCollected(ctx, v2.ID, time.Now()), meta.ErrInvalid)
	if err := c.MarkCollected(ctx, v1.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := getVersion(t, s, v1.ID)
	if got.Status != meta.StatusCollected || got.CollectedAt == nil || got.ArtifactSHA256 != v1.ArtifactSHA256 {
		t.Errorf("collected version = %+v, want status collected, collected_at set, hashes kept", got)
	}
	_, err := s.Activate(ctx, d.ID, 1, "x", meta.ActionRollback)
	wantErr(t, "activate collected", err, meta.ErrGone)
	wantActive(t, s, d.ID, v2)
	if p, err := s.PreviousActive(ctx, d.ID); err != nil || p.ID != v1.ID {
		t.Errorf("PreviousActive = %v, %v; want the collected v1", p, err)
	}
}
