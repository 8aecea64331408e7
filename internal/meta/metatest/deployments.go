package metatest

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

var deploymentTests = []test{
	{"Deployment/CreateGet", testDeploymentCreateGet},
	{"Deployment/DuplicateName", testDeploymentDuplicate},
	{"Deployment/NotFound", testDeploymentNotFound},
	{"Deployment/Invalid", testDeploymentInvalid},
	{"Deployment/List", testDeploymentList},
	{"Deployment/Update", testDeploymentUpdate},
}

func testDeploymentCreateGet(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	if !strings.HasPrefix(d.ID, "dep_") || len(d.ID) < 10 {
		t.Errorf("ID = %q, want dep_…", d.ID)
	}
	wantUTC(t, "CreatedAt", d.CreatedAt)
	if d.RetentionDays != 30 || d.ActiveVersionID != nil || d.Kind != meta.KindStatic {
		t.Errorf("created %+v, want retention 30, no active version, kind static", d)
	}
	sameJSON(t, "by id", getDeployment(t, s, d.ID), d)
	sameJSON(t, "by name", getDeployment(t, s, "site"), d)

	custom := &meta.Deployment{ID: "dep_custom", Name: "api", Kind: meta.KindOCI, RetentionDays: 7}
	if err := s.CreateDeployment(t.Context(), custom, "tester"); err != nil {
		t.Fatal(err)
	}
	if custom.ID != "dep_custom" || custom.RetentionDays != 7 {
		t.Errorf("created %+v, want the given id and retention", custom)
	}
	sameJSON(t, "custom", getDeployment(t, s, "api"), custom)
}

func testDeploymentDuplicate(t *testing.T, s meta.Store) {
	newDeployment(t, s, "site")
	err := s.CreateDeployment(t.Context(), &meta.Deployment{Name: "site", Kind: meta.KindStatic}, "x")
	wantErr(t, "same name", err, meta.ErrConflict)
	if ds, _ := s.ListDeployments(t.Context()); len(ds) != 1 {
		t.Errorf("%d deployments after a conflict, want 1", len(ds))
	}
}

func testDeploymentNotFound(t *testing.T, s meta.Store) {
	_, err := s.GetDeployment(t.Context(), "nope")
	wantErr(t, "GetDeployment", err, meta.ErrNotFound)
	_, err = s.GetDeployment(t.Context(), "dep_nope")
	wantErr(t, "GetDeployment by id", err, meta.ErrNotFound)
	err = s.UpdateDeployment(t.Context(), &meta.Deployment{ID: "dep_nope", RetentionDays: 3}, "x")
	wantErr(t, "UpdateDeployment", err, meta.ErrNotFound)
}

func testDeploymentInvalid(t *testing.T, s meta.Store) {
	for _, d := range []meta.Deployment{
		{Name: "", Kind: meta.KindStatic},
		{Name: "a", Kind: "zip"},
		{Name: "b", Kind: meta.KindStatic, RetentionDays: -1},
	} {
		err := s.CreateDeployment(t.Context(), &d, "x")
		wantErr(t, "CreateDeployment "+d.Name+"/"+d.Kind, err, meta.ErrInvalid)
	}
	d := newDeployment(t, s, "site")
	d.RetentionDays = -5
	wantErr(t, "negative retention", s.UpdateDeployment(t.Context(), d, "x"), meta.ErrInvalid)
}

func testDeploymentList(t *testing.T, s meta.Store) {
	ds, err := s.ListDeployments(t.Context())
	if err != nil || len(ds) != 0 {
		t.Fatalf("empty store: %v, %v", ds, err)
	}
	for _, n := range []string{"bravo", "alpha", "charlie"} {
		newDeployment(t, s, n)
	}
	ds, err = s.ListDeployments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "alpha,bravo,charlie" {
		t.Errorf("ListDeployments = %v, want alpha,bravo,charlie", names)
	}
}

func testDeploymentUpdate(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	want := *d
	want.RetentionDays = 7
	upd := *d
	upd.RetentionDays, upd.Name, upd.Kind = 7, "renamed", meta.KindOCI
	if err := s.UpdateDeployment(t.Context(), &upd, "alice"); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "updated record", upd, want)
	sameJSON(t, "stored record", getDeployment(t, s, d.ID), want)
	e := lastEvent(t, s, d.ID)
	if e.Action != meta.ActionDeploymentUpdate || e.Actor != "alice" {
		t.Errorf("last event %s by %q, want %s by alice", e.Action, e.Actor, meta.ActionDeploymentUpdate)
	}
}
