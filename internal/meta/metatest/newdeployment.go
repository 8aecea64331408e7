package metatest

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// testVersionNewDeployment: CreateVersion with NewDeployment creates the
// deployment and its first version together, with both events.
func testVersionNewDeployment(t *testing.T, s meta.Store) {
	ctx := t.Context()
	d := &meta.Deployment{Name: "fresh", Kind: meta.KindStatic, RetentionDays: 7}
	v, err := s.CreateVersion(ctx, meta.NewVersion{NewDeployment: d, Release: release("fresh"), Activate: true, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || v.DeploymentID != d.ID || v.VersionNumber != 1 || d.ActiveVersionID == nil || *d.ActiveVersionID != v.ID {
		t.Fatalf("deployment %+v, version %+v", d, v)
	}
	got, err := s.GetDeployment(ctx, "fresh")
	if err != nil || got.ID != d.ID || got.RetentionDays != 7 || got.ActiveVersionID == nil || *got.ActiveVersionID != v.ID {
		t.Fatalf("stored deployment %+v, %v", got, err)
	}
	evs, err := s.ListEvents(ctx, meta.EventFilter{DeploymentID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action+" "+e.Actor)
	}
	if fmt.Sprint(actions) != "[deployment.create alice publish alice activate alice]" {
		t.Errorf("events %v", actions)
	}
}

// testVersionNewDeploymentFails: a CreateVersion with NewDeployment that
// fails leaves no deployment; a name taken is ErrConflict.
func testVersionNewDeploymentFails(t *testing.T, s meta.Store) {
	ctx := t.Context()
	rel := release("oops")
	rel.Kind = meta.KindOCI // not the new deployment's kind: fails inside the transaction
	_, err := s.CreateVersion(ctx, meta.NewVersion{NewDeployment: &meta.Deployment{Name: "fresh", Kind: meta.KindStatic}, Release: rel})
	wantErr(t, "release of another kind", err, meta.ErrInvalid)
	_, err = s.CreateVersion(ctx, meta.NewVersion{NewDeployment: &meta.Deployment{Name: "fresh", Kind: meta.KindStatic}, Release: meta.Release{SHA256: "nope"}})
	wantErr(t, "bad sha256", err, meta.ErrInvalid)
	if ds, err := s.ListDeployments(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("deployments after failed creates: %+v, %v", ds, err)
	}
	taken := newDeployment(t, s, "taken")
	_, err = s.CreateVersion(ctx, meta.NewVersion{NewDeployment: &meta.Deployment{Name: "taken", Kind: meta.KindStatic}, Release: release("x")})
	wantErr(t, "name taken", err, meta.ErrConflict)
	if vs, err := s.ListVersions(ctx, taken.ID, 0, 0); err != nil || len(vs) != 0 {
		t.Fatalf("versions of taken: %+v, %v", vs, err)
	}
}
