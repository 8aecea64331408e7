package metatest

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// testWakes: Wake writes a row, moves the placement generation and is read
// back by PlacementState; TouchWakes moves only last_request (no
// generation), makes rows for versions never woken and skips unknown ones;
// a version of another deployment is not found.
func testWakes(t *testing.T, s meta.Store) {
	ws, hs, ctx := capability[meta.Wakes](t, s), hostStore(t, s), t.Context()
	d, v1 := rootfsVersion(t, s, "sleepy")
	other, ov := rootfsVersion(t, s, "other")
	rel := release("rootfs sleepy 2")
	rel.Kind = meta.KindRootfs
	v2, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, SourceSHA256: sha("src2"),
		Release: rel, Manifest: meta.Manifest{Files: 1, Entrypoint: "/app"}, Actor: "tester",
		Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	ps0, err := hs.PlacementState(ctx)
	if err != nil || len(ps0.Wakes) != 0 {
		t.Fatalf("PlacementState before any wake: %+v, %v", ps0, err)
	}
	if err := ws.Wake(ctx, meta.WakeRef{DeploymentID: d.ID, VersionID: v2.ID}); err != nil {
		t.Fatal(err)
	}
	ps1, _ := hs.PlacementState(ctx)
	if ps1.Gen <= ps0.Gen {
		t.Errorf("Wake left the placement generation at %d", ps1.Gen)
	}
	if len(ps1.Wakes) != 1 || ps1.Wakes[0].VersionID != v2.ID || ps1.Wakes[0].DeploymentID != d.ID ||
		ps1.Wakes[0].WokenAt.IsZero() || !ps1.Wakes[0].LastRequest.Equal(ps1.Wakes[0].WokenAt) {
		t.Fatalf("wakes after Wake: %+v", ps1.Wakes)
	}
	for _, bad := range []meta.WakeRef{{DeploymentID: d.ID, VersionID: "ver_nope"}, {DeploymentID: other.ID, VersionID: v2.ID},
		{DeploymentID: "dep_nope", VersionID: v1.ID}} {
		if err := ws.Wake(ctx, bad); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("Wake(%+v) = %v, want ErrNotFound", bad, err)
		}
	}
	if err := ws.TouchWakes(ctx, []meta.WakeRef{{DeploymentID: d.ID, VersionID: v2.ID}, {DeploymentID: d.ID, VersionID: v1.ID},
		{DeploymentID: d.ID, VersionID: ov.ID}, {DeploymentID: other.ID, VersionID: "ver_nope"}}); err != nil {
		t.Fatal(err)
	}
	ps2, _ := hs.PlacementState(ctx)
	if ps2.Gen != ps1.Gen {
		t.Errorf("TouchWakes moved the placement generation %d → %d", ps1.Gen, ps2.Gen)
	}
	got := map[string]meta.Wake{}
	for _, w := range ps2.Wakes {
		got[w.VersionID] = w
	}
	if len(got) != 2 {
		t.Fatalf("wakes after TouchWakes: %+v, want rows of v1 and v2 only", ps2.Wakes)
	}
	if w := got[v2.ID]; !w.WokenAt.Equal(ps1.Wakes[0].WokenAt) || w.LastRequest.Before(ps1.Wakes[0].LastRequest) {
		t.Errorf("v2 after TouchWakes: %+v (woken at %s before)", w, ps1.Wakes[0].WokenAt)
	}
	if w := got[v1.ID]; w.DeploymentID != d.ID || w.LastRequest.IsZero() {
		t.Errorf("v1 after TouchWakes: %+v", w)
	}
	if err := ws.TouchWakes(ctx, nil); err != nil {
		t.Errorf("TouchWakes(nil) = %v", err)
	}
}
