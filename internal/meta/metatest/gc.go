package metatest

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// gcTests check meta.GC, meta.Leases and meta.Policies; each is skipped
// when the store does not implement them.
var gcTests = []test{
	{"GC/Roots", testGCRoots},
	{"GC/Collect", testGCCollect},
	{"GC/Cancel", testGCCancel},
	{"GC/Leases", testGCLeases},
	{"GC/RenewLeases", testGCRenewLeases},
	{"GC/Lock", testGCLock},
	{"GC/DropHolder", testGCDropHolder},
	{"GC/Orphans", testGCOrphans},
	{"GC/Policy", testGCPolicy},
}

const day = 24 * time.Hour

func roots(t *testing.T, g meta.GC, now time.Time) map[string]meta.Root {
	t.Helper()
	snap, err := g.GCSnapshot(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Roots(now)
}

func wantRoot(t *testing.T, rs map[string]meta.Root, v *meta.Version, reason string) {
	t.Helper()
	if got := rs[v.ArtifactSHA256].Reason; got != reason {
		t.Errorf("v%d: root %q, want %q", v.VersionNumber, got, reason)
	}
}

// testGCRoots: active, pinned, retention, keep_versions and sharing.
func testGCRoots(t *testing.T, s meta.Store) {
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site") // retention 30
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	v3 := publish(t, s, d.ID, "three", false)
	v4 := publish(t, s, d.ID, "four", true)
	v5 := publish(t, s, d.ID, "one", false) // shares v1's release
	addDomain(t, s, "pin.example.com", d.ID, &v2.ID)
	now := getVersion(t, s, v5.ID).CreatedAt
	rs := roots(t, g, now)
	wantRoot(t, rs, v4, meta.RootActive)
	wantRoot(t, rs, v2, meta.RootDomain)
	wantRoot(t, rs, v3, meta.RootRetention)
	if r := rs[v3.ArtifactSHA256]; r.Until == nil || !r.Until.Equal(v3.CreatedAt.Add(30*day)) {
		t.Errorf("v3 retention until %v, want created_at+30d", r.Until)
	}
	later := now.Add(31 * day)
	rs = roots(t, g, later)
	wantRoot(t, rs, v4, meta.RootActive)
	wantRoot(t, rs, v2, meta.RootDomain)
	wantRoot(t, rs, v3, "")
	wantRoot(t, rs, v1, "")
	if p, ok := s.(meta.Policies); ok {
		if _, err := p.SetPolicy(t.Context(), d.ID, meta.Policy{KeepVersions: ptr(1)}, "x"); err != nil {
			t.Fatal(err)
		}
		// v5 (never activated, created last) is the newest archived version;
		// it shares v1's release, which is kept through it.
		rs = roots(t, g, later)
		wantRoot(t, rs, v5, meta.RootKeepVersions)
		wantRoot(t, rs, v1, meta.RootKeepVersions)
		wantRoot(t, rs, v3, "")
	}
}

func ptr(n int) *int { return &n }

// testGCCollect: mark, collect with events, 410, deletion claim.
func testGCCollect(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	v3 := publish(t, s, d.ID, "one", false) // same release as v1
	now := getVersion(t, s, v3.ID).CreatedAt.Add(31 * day)
	kept, err := g.MarkCollecting(ctx, []string{v1.ArtifactSHA256, v2.ArtifactSHA256}, now)
	if err != nil {
		t.Fatal(err)
	}
	if kept[v2.ArtifactSHA256].Reason != meta.RootActive || len(kept) != 1 {
		t.Errorf("MarkCollecting kept %v, want only v2 (active)", kept)
	}
	if c := collect(t, g, v1.ArtifactSHA256, now.Add(-time.Second), now, time.Hour); c != nil {
		t.Errorf("collect before the grace ended: %+v, want nothing", c)
	}
	var changes <-chan struct{}
	if w, ok := s.(meta.Watcher); ok {
		changes = w.Watch(ctx)
	}
	cs, err := g.CollectReleases(ctx, []string{v1.ArtifactSHA256, v2.ArtifactSHA256, sha("nope")}, now, now, "gc-test", time.Hour)
	if err != nil || len(cs) != 1 || cs[0].Root != nil || len(cs[0].Versions) != 2 {
		t.Fatalf("CollectReleases = %+v, %v; want v1 and v3 collected, v2 (unmarked) and an unknown sha skipped", cs, err)
	}
	if changes != nil {
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Error("no Watch notification after a collection")
		}
	}
	for _, v := range []*meta.Version{v1, v3} {
		got := getVersion(t, s, v.ID)
		if got.Status != meta.StatusCollected || got.CollectedAt == nil || got.ArtifactSHA256 != v.ArtifactSHA256 {
			t.Errorf("v%d after collection: %+v", v.VersionNumber, got)
		}
	}
	rel, err := s.GetRelease(ctx, v1.ArtifactSHA256)
	if err != nil || rel.CollectedAt == nil {
		t.Errorf("release after collection: %+v, %v", rel, err)
	}
	n := 0
	for _, e := range events(t, s, meta.EventFilter{DeploymentID: d.ID}) {
		if e.Action == meta.ActionCollect && e.Actor == "gc" && e.ReleaseSHA256 == v1.ArtifactSHA256 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d collect events, want 2", n)
	}
	_, err = s.Activate(ctx, d.ID, 1, "x", meta.ActionRollback)
	wantErr(t, "activate collected", err, meta.ErrGone)
	snap, err := g.GCSnapshot(ctx, now)
	if err != nil || !snap.Claimed[v1.ArtifactSHA256] {
		t.Errorf("no deletion claim after collection (%v)", err)
	}
	if err := g.DropClaims(ctx, "gc-test", v1.ArtifactSHA256); err != nil {
		t.Fatal(err)
	}
	if snap, _ := g.GCSnapshot(ctx, now); snap.Claimed[v1.ArtifactSHA256] {
		t.Error("claim left after DropClaims")
	}
	if c := collect(t, g, v1.ArtifactSHA256, now, now, time.Hour); c != nil {
		t.Errorf("collecting twice: %+v", c)
	}
}

// collect runs CollectReleases on one release; nil: skipped.
func collect(t *testing.T, g meta.GC, sha string, markedBefore, now time.Time, ttl time.Duration) *meta.Collection {
	t.Helper()
	cs, err := g.CollectReleases(t.Context(), []string{sha}, markedBefore, now, "gc-test", ttl)
	if err != nil || len(cs) > 1 {
		t.Fatalf("CollectReleases(%s) = %+v, %v", sha, cs, err)
	}
	if len(cs) == 0 {
		return nil
	}
	return &cs[0]
}

// testGCCancel: a root appearing after the mark cancels the collection.
func testGCCancel(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	now := getVersion(t, s, v2.ID).CreatedAt.Add(31 * day)
	if _, err := g.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Activate(ctx, d.ID, 1, "x", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}
	if c := collect(t, g, v1.ArtifactSHA256, now, now, time.Hour); c == nil || c.Root == nil || c.Root.Reason != meta.RootActive {
		t.Fatalf("CollectReleases after activation = %+v; want cancelled by active", c)
	}
	if v := getVersion(t, s, v1.ID); v.CollectedAt != nil || v.Status != meta.StatusActive {
		t.Errorf("v1 after a cancelled collection: %+v", v)
	}
	snap, _ := g.GCSnapshot(ctx, now)
	for _, r := range snap.Releases {
		if r.SHA256 == v1.ArtifactSHA256 && (r.CollectingAt != nil || r.CollectedAt != nil) {
			t.Errorf("release still marked after cancel: %+v", r)
		}
	}
}

func testGCPolicy(t *testing.T, s meta.Store) {
	p := capability[meta.Policies](t, s)
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic, RetentionDays: 0, KeepVersions: 3}
	if err := p.CreateDeploymentWithPolicy(t.Context(), d, "alice"); err != nil {
		t.Fatal(err)
	}
	if d.RetentionDays != 0 || d.KeepVersions != 3 {
		t.Errorf("created %+v, want retention 0, keep 3", d)
	}
	sameJSON(t, "stored", getDeployment(t, s, d.ID), d)
	got, err := p.SetPolicy(t.Context(), d.ID, meta.Policy{RetentionDays: ptr(7)}, "bob")
	if err != nil || got.RetentionDays != 7 || got.KeepVersions != 3 {
		t.Fatalf("SetPolicy = %+v, %v", got, err)
	}
	sameJSON(t, "stored after SetPolicy", getDeployment(t, s, d.ID), got)
	if e := lastEvent(t, s, d.ID); e.Action != meta.ActionDeploymentUpdate || e.Actor != "bob" {
		t.Errorf("last event %+v", e)
	}
	_, err = p.SetPolicy(t.Context(), d.ID, meta.Policy{KeepVersions: ptr(-1)}, "x")
	wantErr(t, "negative keep_versions", err, meta.ErrInvalid)
	_, err = p.SetPolicy(t.Context(), "dep_nope", meta.Policy{}, "x")
	wantErr(t, "unknown deployment", err, meta.ErrNotFound)
}
