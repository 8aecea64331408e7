package metatest

import (
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

var deleteTests = []test{
	{"Delete/Domain", testDeleteDomain},
	{"Delete/Deployment", testDeleteDeployment},
	{"Delete/DeploymentWithDomains", testDeleteDeploymentDomains},
}

func testDeleteDomain(t *testing.T, s meta.Store) {
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	addDomain(t, s, "pinned.example.com", dep.ID, &v1.ID)
	addDomain(t, s, "follows.example.com", dep.ID, nil)
	if err := s.DeleteDomain(t.Context(), "Pinned.Example.com", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetDomain(t.Context(), "pinned.example.com")
	wantErr(t, "GetDomain after delete", err, meta.ErrNotFound)
	wantErr(t, "DeleteDomain again", s.DeleteDomain(t.Context(), "pinned.example.com", "alice"), meta.ErrNotFound)
	if ds, err := s.ListDomains(t.Context()); err != nil || len(ds) != 1 || ds[0].Hostname != "follows.example.com" {
		t.Errorf("ListDomains = %v, %v", ds, err)
	}
	e := lastEvent(t, s, dep.ID)
	if e.Action != meta.ActionDomainRemove || e.Hostname != "pinned.example.com" || e.Actor != "alice" {
		t.Errorf("event %+v", e)
	}
	if before, after := beforeAfter(t, e); str(before) != v1.ID || after != nil {
		t.Errorf("detail before %s after %s", str(before), str(after))
	}
	if evs := events(t, s, meta.EventFilter{Hostname: "pinned.example.com"}); len(evs) != 2 ||
		evs[0].Action != meta.ActionDomainAdd || evs[1].Action != meta.ActionDomainRemove {
		t.Errorf("events of the host: %v", actions(evs))
	}
}

func testDeleteDeployment(t *testing.T, s meta.Store) {
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	v2 := publish(t, s, dep.ID, "two", false)
	d, err := s.DeleteDeployment(t.Context(), dep.ID, false, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d.ActiveVersionID != nil || d.DeletedAt == nil {
		t.Errorf("deleted deployment %+v", d)
	}
	got := getDeployment(t, s, dep.ID)
	if got.ActiveVersionID != nil || got.DeletedAt == nil || !got.DeletedAt.Equal(*d.DeletedAt) {
		t.Errorf("stored %+v", got)
	}
	wantUTC(t, "deleted_at", *got.DeletedAt)
	if v := getVersion(t, s, v1.ID); v.Status != meta.StatusArchived || v.ArchivedAt == nil {
		t.Errorf("the active version after delete: %s", v.Status)
	}
	// Every version is archived; a ready one keeps its archived_at (its
	// publish time: retention counts from there).
	if v := getVersion(t, s, v2.ID); v.Status != meta.StatusArchived || v.ArchivedAt == nil || !v.ArchivedAt.Equal(*v2.ArchivedAt) {
		t.Errorf("a ready version after delete: %s, archived_at %v (was %v)", v.Status, v.ArchivedAt, v2.ArchivedAt)
	}
	if vs, err := s.ListVersions(t.Context(), dep.ID, 100, 0); err != nil {
		t.Fatal(err)
	} else {
		for _, v := range vs {
			if v.Status != meta.StatusArchived {
				t.Errorf("version %d after delete: %s", v.VersionNumber, v.Status)
			}
		}
	}
	e := lastEvent(t, s, dep.ID)
	if e.Action != meta.ActionDeploymentDelete || e.Actor != "alice" {
		t.Errorf("event %+v", e)
	}
	// Deleting again changes nothing and appends nothing.
	n := len(events(t, s, meta.EventFilter{DeploymentID: dep.ID}))
	if _, err := s.DeleteDeployment(t.Context(), dep.ID, false, "alice"); err != nil {
		t.Fatal(err)
	}
	if m := len(events(t, s, meta.EventFilter{DeploymentID: dep.ID})); m != n {
		t.Errorf("a second delete appended %d events", m-n)
	}
	// A publish undeletes it; numbering goes on.
	v3 := publish(t, s, dep.ID, "three", true)
	if got := getDeployment(t, s, dep.ID); got.DeletedAt != nil || v3.VersionNumber != 3 {
		t.Errorf("after a publish: deleted_at %v, version %d", got.DeletedAt, v3.VersionNumber)
	}
	_, err = s.DeleteDeployment(t.Context(), "dep_nope", false, "alice")
	wantErr(t, "DeleteDeployment unknown", err, meta.ErrNotFound)
}

func testDeleteDeploymentDomains(t *testing.T, s meta.Store) {
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	addDomain(t, s, "a.example.com", dep.ID, nil)
	addDomain(t, s, "b.example.com", dep.ID, &v1.ID)
	_, err := s.DeleteDeployment(t.Context(), dep.ID, false, "alice")
	wantErr(t, "delete with domains", err, meta.ErrConflict)
	if got := getDeployment(t, s, dep.ID); got.DeletedAt != nil || got.ActiveVersionID == nil {
		t.Errorf("a refused delete changed %+v", got)
	}
	if _, err := s.DeleteDeployment(t.Context(), dep.ID, true, "alice"); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.ListDomains(t.Context()); err != nil || len(ds) != 0 {
		t.Errorf("domains after a forced delete: %v, %v", ds, err)
	}
	evs := events(t, s, meta.EventFilter{DeploymentID: dep.ID})
	tail := actions(evs[len(evs)-3:])
	if tail != meta.ActionDomainRemove+","+meta.ActionDomainRemove+","+meta.ActionDeploymentDelete {
		t.Errorf("events %s", tail)
	}
}
