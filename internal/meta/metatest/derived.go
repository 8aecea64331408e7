package metatest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// derivedTests check meta.Derivations; skipped when the store does not
// implement it.
var derivedTests = []test{
	{"Derived/Record", testDerivedRecord},
	{"Derived/Roots", testDerivedRoots},
}

func putDerived(t *testing.T, ds meta.Derivations, kind, source, content string) *meta.Derived {
	t.Helper()
	d := &meta.Derived{Kind: kind, SourceSHA256: source, SHA256: sha(content)}
	rel := release(content)
	rel.Kind = kind
	if err := ds.PutDerived(t.Context(), d, rel); err != nil {
		t.Fatalf("PutDerived(%s of %s): %v", kind, source, err)
	}
	return d
}

// publishImage publishes an oci version whose manifest is content.
func publishImage(t *testing.T, s meta.Store, depID, content string) *meta.Version {
	t.Helper()
	rel := release(content)
	rel.Kind, rel.TreeSHA256 = meta.KindOCI, ""
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: depID, Release: rel, Activate: true, Actor: "tester"})
	if err != nil {
		t.Fatalf("CreateVersion(%s): %v", content, err)
	}
	return v
}

// testDerivedRecord: recorded both ways, once per (kind, source).
func testDerivedRecord(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ds := capability[meta.Derivations](t, s)
	d := ociDeployment(t, s, "img")
	v := publishImage(t, s, d.ID, "image")
	r := putDerived(t, ds, meta.DerivedRootfs, v.ArtifactSHA256, "rootfs")
	if r.CreatedAt.IsZero() {
		t.Error("CreatedAt not filled")
	}
	again := putDerived(t, ds, meta.DerivedRootfs, v.ArtifactSHA256, "rootfs")
	if !again.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("recording again changed created_at: %v, was %v", again.CreatedAt, r.CreatedAt)
	}
	e := putDerived(t, ds, meta.DerivedErofs, r.SHA256, "erofs")
	// One derive event per new record (none for recording it again), in
	// the hash chain.
	var derives []string
	for _, ev := range wantChain(t, s) {
		if ev.Action == meta.ActionDerive {
			derives = append(derives, ev.Actor+" "+ev.ReleaseSHA256+" "+string(ev.Detail))
		}
	}
	wantDerives := []string{
		"derive " + r.SHA256 + ` {"kind":"rootfs","source_sha256":"` + v.ArtifactSHA256 + `"}`,
		"derive " + e.SHA256 + ` {"kind":"erofs","source_sha256":"` + r.SHA256 + `"}`,
	}
	if fmt.Sprint(derives) != fmt.Sprint(wantDerives) {
		t.Errorf("derive events:\n%q\nwant\n%q", derives, wantDerives)
	}
	got, err := ds.GetDerived(ctx, meta.DerivedRootfs, v.ArtifactSHA256)
	if err != nil || got.SHA256 != r.SHA256 {
		t.Errorf("GetDerived(rootfs of the image) = %+v, %v", got, err)
	}
	from, err := ds.DerivedFrom(ctx, e.SHA256)
	if err != nil || len(from) != 1 || from[0].SourceSHA256 != r.SHA256 || from[0].Kind != meta.DerivedErofs {
		t.Errorf("DerivedFrom(erofs) = %+v, %v", from, err)
	}
	if rel, err := s.GetRelease(ctx, e.SHA256); err != nil || rel.Kind != meta.DerivedErofs {
		t.Errorf("erofs release = %+v, %v", rel, err)
	}
	other := &meta.Derived{Kind: meta.DerivedRootfs, SourceSHA256: v.ArtifactSHA256, SHA256: sha("other")}
	wantErr(t, "another rootfs of the same image", ds.PutDerived(ctx, other, release("other")), meta.ErrConflict)
	unknown := &meta.Derived{Kind: meta.DerivedRootfs, SourceSHA256: sha("no such image"), SHA256: sha("x")}
	wantErr(t, "unknown source", ds.PutDerived(ctx, unknown, release("x")), meta.ErrNotFound)
	bad := &meta.Derived{Kind: "zip", SourceSHA256: v.ArtifactSHA256, SHA256: sha("x")}
	wantErr(t, "unknown kind", ds.PutDerived(ctx, bad, release("x")), meta.ErrInvalid)
	_, err = ds.GetDerived(ctx, meta.DerivedErofs, v.ArtifactSHA256)
	wantErr(t, "no erofs of the image itself", err, meta.ErrNotFound)
	wrong := &meta.Derived{Kind: meta.DerivedErofs, SourceSHA256: v.ArtifactSHA256, SHA256: sha("y")}
	wantErr(t, "erofs of an OCI manifest", ds.PutDerived(ctx, wrong, release("y")), meta.ErrInvalid)
	site := newDeployment(t, s, "site")
	static := publish(t, s, site.ID, "static", true)
	wrong = &meta.Derived{Kind: meta.DerivedRootfs, SourceSHA256: static.ArtifactSHA256, SHA256: sha("z")}
	wantErr(t, "rootfs of a static release", ds.PutDerived(ctx, wrong, release("z")), meta.ErrInvalid)
}

// testDerivedRoots: a derived rootfs and the erofs image of it are kept
// while the version they derive from is a root, and collected after.
func testDerivedRoots(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ds := capability[meta.Derivations](t, s)
	g := capability[meta.GC](t, s)
	d := ociDeployment(t, s, "img") // retention 30
	v1 := publishImage(t, s, d.ID, "image one")
	r1 := putDerived(t, ds, meta.DerivedRootfs, v1.ArtifactSHA256, "rootfs one")
	e1 := putDerived(t, ds, meta.DerivedErofs, r1.SHA256, "erofs one")
	v2 := publishImage(t, s, d.ID, "image two")
	r2 := putDerived(t, ds, meta.DerivedRootfs, v2.ArtifactSHA256, "rootfs two")
	now := getVersion(t, s, v2.ID).CreatedAt
	rs := roots(t, g, now)
	for _, sha := range []string{r1.SHA256, e1.SHA256, r2.SHA256} {
		if rs[sha].Reason != meta.RootDerived {
			t.Errorf("%s: root %+v, want derived", sha[:8], rs[sha])
		}
	}
	if rs[e1.SHA256].VersionID != v1.ID || rs[r2.SHA256].VersionID != v2.ID {
		t.Errorf("derived roots name the wrong versions: %+v, %+v", rs[e1.SHA256], rs[r2.SHA256])
	}
	kept, err := g.MarkCollecting(ctx, []string{r1.SHA256, e1.SHA256, r2.SHA256}, now)
	if err != nil || len(kept) != 3 || kept[e1.SHA256].VersionID != v1.ID {
		t.Fatalf("MarkCollecting while v1 is retained kept %+v, %v; want all three", kept, err)
	}

	later := now.Add(31 * day)
	rs = roots(t, g, later)
	if _, ok := rs[r1.SHA256]; ok {
		t.Errorf("rootfs of v1 (out of retention): root %+v, want none", rs[r1.SHA256])
	}
	if _, ok := rs[e1.SHA256]; ok {
		t.Errorf("erofs of v1's rootfs: root %+v, want none", rs[e1.SHA256])
	}
	if rs[r2.SHA256].Reason != meta.RootDerived || rs[r2.SHA256].VersionID != v2.ID {
		t.Errorf("rootfs of the active v2: root %+v", rs[r2.SHA256])
	}
	shas := []string{r1.SHA256, e1.SHA256, r2.SHA256}
	kept, err = g.MarkCollecting(ctx, shas, later)
	if err != nil || len(kept) != 1 || kept[r2.SHA256].Reason != meta.RootDerived {
		t.Fatalf("MarkCollecting kept %+v, %v; want only v2's rootfs", kept, err)
	}
	cs, err := g.CollectReleases(ctx, shas, later, later.Add(time.Second), "gc-test", time.Hour)
	if err != nil || len(cs) != 2 || cs[0].Root != nil || cs[1].Root != nil {
		t.Fatalf("CollectReleases = %+v, %v; want v1's rootfs and erofs collected", cs, err)
	}
	_, err = ds.GetDerived(ctx, meta.DerivedRootfs, v1.ArtifactSHA256)
	wantErr(t, "rootfs of v1 after its collection", err, meta.ErrNotFound)
	if err := g.DropClaims(ctx, "gc-test", r1.SHA256, e1.SHA256); err != nil {
		t.Fatal(err)
	}
	// Deriving again revives the release (the same bytes) or replaces the
	// collected record (other bytes: another packer or mkfs.erofs).
	putDerived(t, ds, meta.DerivedErofs, r1.SHA256, "erofs one")
	if rel, err := s.GetRelease(ctx, e1.SHA256); err != nil || rel.CollectedAt != nil {
		t.Errorf("erofs derived again: %+v, %v", rel, err)
	}
	newer := putDerived(t, ds, meta.DerivedRootfs, v1.ArtifactSHA256, "rootfs one, newer packer")
	if got, err := ds.GetDerived(ctx, meta.DerivedRootfs, v1.ArtifactSHA256); err != nil || got.SHA256 != newer.SHA256 {
		t.Errorf("rootfs of v1 derived again with other bytes: %+v, %v", got, err)
	}
}
