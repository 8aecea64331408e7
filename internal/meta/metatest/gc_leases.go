package metatest

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// testGCLeases: a lease is a root, clears the mark, and sees claims.
func testGCLeases(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	base := getVersion(t, s, v2.ID).CreatedAt
	now := base.Add(31 * day)
	if _, err := g.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now); err != nil {
		t.Fatal(err)
	}
	deleting, err := g.HoldRelease(ctx, v1.ArtifactSHA256, "pub-1", 365*day)
	if err != nil || deleting {
		t.Fatalf("HoldRelease = %v, %v", deleting, err)
	}
	wantRoot(t, roots(t, g, now), v1, meta.RootLease)
	if c := collect(t, g, v1.ArtifactSHA256, now, now, time.Hour); c != nil {
		t.Errorf("collected a leased (and unmarked) release: %+v", c)
	}
	if ok, err := g.ClaimOrphan(ctx, v1.ArtifactSHA256, "gc-test", now, time.Hour); ok || err != nil {
		t.Errorf("ClaimOrphan of a leased release = %v, %v", ok, err)
	}
	if err := g.DropRelease(ctx, v1.ArtifactSHA256, "pub-1"); err != nil {
		t.Fatal(err)
	}
	wantRoot(t, roots(t, g, now), v1, "")
	if _, err := g.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now); err != nil {
		t.Fatal(err)
	}
	if c := collect(t, g, v1.ArtifactSHA256, now, now, 365*day); c == nil || c.Root != nil {
		t.Fatalf("CollectReleases = %+v", c)
	}
	if deleting, err := g.HoldRelease(ctx, v1.ArtifactSHA256, "pub-2", time.Hour); err != nil || !deleting {
		t.Errorf("HoldRelease during deletion = %v, %v; want deleting", deleting, err)
	}
	if err := g.DropClaims(ctx, "gc-test", v1.ArtifactSHA256); err != nil {
		t.Fatal(err)
	}
	if deleting, err := g.HoldRelease(ctx, v1.ArtifactSHA256, "pub-2", time.Hour); err != nil || deleting {
		t.Errorf("HoldRelease after deletion = %v, %v; want not deleting", deleting, err)
	}
	if err := g.PruneLeases(ctx, now.Add(365*day)); err != nil {
		t.Fatal(err)
	}
	if snap, _ := g.GCSnapshot(ctx, base); len(snap.Leased)+len(snap.Claimed) != 0 {
		t.Errorf("leases left after PruneLeases: %v %v", snap.Leased, snap.Claimed)
	}
}

// testGCRenewLeases: RenewLeases extends a holder's unexpired leases, and
// only those.
func testGCRenewLeases(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	base := newDeployment(t, s, "site").CreatedAt // the store's clock
	hold := func(content, holder string, ttl time.Duration) string {
		t.Helper()
		if _, err := g.HoldRelease(ctx, sha(content), holder, ttl); err != nil {
			t.Fatal(err)
		}
		return sha(content)
	}
	a, b := hold("a", "upload-1", time.Hour), hold("b", "upload-1", time.Hour)
	hold("b", "upload-2", time.Hour)
	expired := hold("c", "upload-1", -time.Second)
	stray := sha("stray")
	if ok, err := g.ClaimOrphan(ctx, stray, "upload-1", base, time.Hour); !ok || err != nil {
		t.Fatalf("ClaimOrphan = %v, %v", ok, err)
	}
	n, err := g.RenewLeases(ctx, "upload-1", 30*day)
	if err != nil || n != 2 {
		t.Errorf("RenewLeases = %d, %v; want 2 (a and b, not the expired c)", n, err)
	}
	if n, err := g.RenewLeases(ctx, "nobody", 30*day); err != nil || n != 0 {
		t.Errorf("RenewLeases of a holder without leases = %d, %v", n, err)
	}
	snap, err := g.GCSnapshot(ctx, base.Add(29*day))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "leased after the renewal", snap.Leased, map[string]bool{a: true, b: true})
	sameJSON(t, "claimed after the renewal", snap.Claimed, map[string]bool{})
	if snap, _ := g.GCSnapshot(ctx, base.Add(31*day)); len(snap.Leased) != 0 {
		t.Errorf("leases outlived their renewal: %v", snap.Leased)
	}
	if snap, _ := g.GCSnapshot(ctx, base); snap.Leased[expired] || !snap.Claimed[stray] {
		t.Errorf("at the start: leased %v, claimed %v", snap.Leased, snap.Claimed)
	}
	if err := g.PruneLeases(ctx, base.Add(365*day)); err != nil {
		t.Fatal(err)
	}
}

func testGCLock(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	acquire := func(holder string, ttl time.Duration, want bool) {
		t.Helper()
		if ok, err := g.AcquireLock(ctx, "gc", holder, ttl); err != nil || ok != want {
			t.Errorf("AcquireLock(%s) = %v, %v; want %v", holder, ok, err, want)
		}
	}
	acquire("a", time.Hour, true)
	acquire("b", time.Hour, false)
	acquire("a", -time.Second, true) // renewed, already expired
	acquire("b", time.Hour, true)
	if err := g.ReleaseLock(ctx, "gc", "a"); err != nil {
		t.Fatal(err)
	}
	acquire("a", time.Hour, false)
	if err := g.ReleaseLock(ctx, "gc", "b"); err != nil {
		t.Fatal(err)
	}
	acquire("a", time.Hour, true)
	if err := g.ReleaseLock(ctx, "gc", "a"); err != nil {
		t.Fatal(err)
	}
}

// testGCDropHolder: the locks, leases and claims of a holder whose process
// died are listed by Holders and ended at once by DropHolder; another
// holder's are kept.
func testGCDropHolder(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	now := newDeployment(t, s, "site").CreatedAt
	holders := func() []string {
		t.Helper()
		hs, err := g.Holders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	if hs := holders(); len(hs) != 0 {
		t.Fatalf("Holders of an empty store = %v", hs)
	}
	if ok, err := g.AcquireLock(ctx, "gc", "dead", time.Hour); !ok || err != nil {
		t.Fatalf("AcquireLock = %v, %v", ok, err)
	}
	if _, err := g.HoldRelease(ctx, sha("a"), "dead", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.ClaimOrphan(ctx, sha("stray"), "dead", now, time.Hour); !ok || err != nil {
		t.Fatalf("ClaimOrphan = %v, %v", ok, err)
	}
	if _, err := g.HoldRelease(ctx, sha("b"), "live", time.Hour); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "holders", holders(), []string{"dead", "live"})
	if err := g.DropHolder(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "holders after DropHolder", holders(), []string{"live"})
	if ok, err := g.AcquireLock(ctx, "gc", "next", time.Hour); !ok || err != nil {
		t.Errorf("AcquireLock after the dead holder was dropped = %v, %v", ok, err)
	}
	snap, err := g.GCSnapshot(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "leased", snap.Leased, map[string]bool{sha("b"): true})
	sameJSON(t, "claimed", snap.Claimed, map[string]bool{})
	if err := g.DropHolder(ctx, "nobody"); err != nil {
		t.Errorf("DropHolder of an unknown holder: %v", err)
	}
	g.ReleaseLock(ctx, "gc", "next")
	g.DropRelease(ctx, sha("b"), "live")
}

func testGCOrphans(t *testing.T, s meta.Store) {
	ctx := t.Context()
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	now := v1.CreatedAt
	if ok, err := g.ClaimOrphan(ctx, v1.ArtifactSHA256, "gc", now, time.Hour); ok || err != nil {
		t.Errorf("ClaimOrphan of a live release = %v, %v", ok, err)
	}
	stray := sha("stray")
	if ok, err := g.ClaimOrphan(ctx, stray, "gc", now, time.Hour); !ok || err != nil {
		t.Errorf("ClaimOrphan of a blob without release = %v, %v", ok, err)
	}
	if ok, _ := g.ClaimOrphan(ctx, stray, "other", now, time.Hour); ok {
		t.Error("two claims on one orphan")
	}
	seen := noteOrphans(ctx, t, g, now, "sha256:"+stray, "sha256:"+sha("b"))
	later := noteOrphans(ctx, t, g, now.Add(time.Hour), "sha256:"+stray)
	if !later["sha256:"+stray].Equal(seen["sha256:"+stray]) || len(later) != 1 {
		t.Errorf("first sightings %v then %v", seen, later)
	}
	if snap, _ := g.GCSnapshot(ctx, now); len(snap.Orphans) != 1 {
		t.Errorf("orphans kept: %v, want only the stray", snap.Orphans)
	}
}

func noteOrphans(ctx context.Context, t *testing.T, g meta.GC, now time.Time, ds ...string) map[string]time.Time {
	t.Helper()
	m, err := g.NoteOrphans(ctx, ds, now)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
