package gc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
)

// TestRetention: a version inside its window is kept, collected after it;
// the active version is never collected whatever its age.
func TestRetention(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 2, 0)
	v1 := e.publish(d, "one", true)
	e.clock.Add(time.Hour)
	v2 := e.publish(d, "two", true) // archives v1 now
	e.clock.Add(2*day - time.Second)
	rep := e.run(c, false)
	if got := keptBy(rep, v1.ArtifactSHA256); got != meta.RootRetention {
		t.Errorf("v1 inside its window: kept by %q, want retention", got)
	}
	e.wantKept(v1, true)
	e.clock.Add(time.Second)
	rep = e.run(c, false)
	if len(rep.Collected) != 1 || rep.Collected[0].SHA256 != v1.ArtifactSHA256 || rep.Collected[0].BytesFreed == 0 {
		t.Fatalf("collected %+v, want v1's release with its bytes", rep.Collected)
	}
	if vs := rep.Collected[0].Versions; len(vs) != 1 || vs[0].VersionID != v1.ID {
		t.Errorf("collected versions %+v, want v1", vs)
	}
	e.wantKept(v1, false)
	evs, _ := e.meta.ListEvents(t.Context(), meta.EventFilter{DeploymentID: d.ID})
	if last := evs[len(evs)-1]; last.Action != meta.ActionCollect || last.Actor != "gc" || last.VersionID != v1.ID {
		t.Errorf("last event %+v, want collect of v1 by gc", last)
	}
	_, err := e.meta.Activate(t.Context(), d.ID, 1, "x", meta.ActionRollback)
	if !errors.Is(err, meta.ErrGone) {
		t.Errorf("rollback to collected v1: %v, want ErrGone", err)
	}
	e.clock.Add(1000 * day)
	rep = e.run(c, false)
	if got := keptBy(rep, v2.ArtifactSHA256); got != meta.RootActive || len(rep.Collected) != 0 {
		t.Errorf("after 1000 days: v2 kept by %q, collected %v; want active and nothing", got, rep.Collected)
	}
	e.wantKept(v2, true)
}

// TestNeverActivated: a version never activated counts from its created_at.
func TestNeverActivated(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 1, 0)
	e.publish(d, "one", true)
	ready := e.publish(d, "draft", false)
	e.clock.Add(day - time.Minute)
	e.run(c, false)
	e.wantKept(ready, true)
	e.clock.Add(time.Minute)
	e.run(c, false)
	e.wantKept(ready, false)
}

// TestDomainPinned: a pinned version is never collected; unpinned, it is.
func TestDomainPinned(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	if err := e.meta.CreateDomain(t.Context(), &meta.Domain{Hostname: "old.example.com", DeploymentID: d.ID, VersionID: &v1.ID}, "x"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(365 * day)
	if got := keptBy(e.run(c, false), v1.ArtifactSHA256); got != meta.RootDomain {
		t.Errorf("pinned v1 kept by %q, want domain", got)
	}
	e.wantKept(v1, true)
	if _, err := e.meta.SetDomainVersion(t.Context(), "old.example.com", nil, "x"); err != nil {
		t.Fatal(err)
	}
	e.run(c, false)
	e.wantKept(v1, false)
}

// TestKeepVersions: the newest keep_versions archived versions stay.
func TestKeepVersions(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 0, 2)
	var vs []*meta.Version
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		vs = append(vs, e.publish(d, tag, true))
		e.clock.Add(time.Minute)
	}
	rep := e.run(c, false)
	for i, want := range []string{"", "", meta.RootKeepVersions, meta.RootKeepVersions, meta.RootActive} {
		if got := keptBy(rep, vs[i].ArtifactSHA256); got != want {
			t.Errorf("v%d kept by %q, want %q", i+1, got, want)
		}
		e.wantKept(vs[i], want != "")
	}
}

// TestSharedRelease: a release shared by two versions is kept while
// either is a root, and collected with both when neither is.
func TestSharedRelease(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	a, b := e.deployment("a", 0, 0), e.deployment("b", 0, 0)
	va := e.publish(a, "shared", true)
	vb := e.publish(b, "shared", true)
	if va.ArtifactSHA256 != vb.ArtifactSHA256 {
		t.Fatal("same bytes, different releases")
	}
	e.publish(a, "a2", true) // va archived; vb still active
	e.clock.Add(day)
	if got := keptBy(e.run(c, false), va.ArtifactSHA256); got != meta.RootActive {
		t.Errorf("shared release kept by %q, want active (b's version)", got)
	}
	e.wantKept(va, true)
	e.publish(b, "b2", true)
	rep := e.run(c, false)
	if len(rep.Collected) != 1 || len(rep.Collected[0].Versions) != 2 {
		t.Fatalf("collected %+v, want the shared release with both versions", rep.Collected)
	}
	e.wantKept(va, false)
	e.wantKept(vb, false)
}

// TestLeaseHolds: a leased sha256 is a root until the lease is dropped.
func TestLeaseHolds(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	drop, err := lease.Hold(t.Context(), e.meta, v1.ArtifactSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := keptBy(e.run(c, false), v1.ArtifactSHA256); got != meta.RootLease {
		t.Errorf("leased release kept by %q, want lease", got)
	}
	e.wantKept(v1, true)
	drop()
	e.run(c, false)
	e.wantKept(v1, false)
}

// TestGrace: a marked release waits the grace period before collection.
func TestGrace(t *testing.T) {
	e := newEnv(t)
	c := e.collector(time.Hour, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	rep := e.run(c, false)
	if len(rep.Marked) != 1 || len(rep.Collected) != 0 || !rep.Marked[0].CollectableAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("first run: marked %+v, collected %+v", rep.Marked, rep.Collected)
	}
	e.clock.Add(time.Hour - time.Second)
	if rep = e.run(c, false); len(rep.Collected) != 0 || len(rep.Marked) != 1 {
		t.Errorf("inside the grace period: collected %+v", rep.Collected)
	}
	e.clock.Add(time.Second)
	if rep = e.run(c, false); len(rep.Collected) != 1 {
		t.Errorf("after the grace period: collected %+v", rep.Collected)
	}
	e.wantKept(v1, false)
}

// TestBusy: one run at a time, across processes.
func TestBusy(t *testing.T) {
	e := newEnv(t)
	if ok, err := e.meta.AcquireLock(t.Context(), gc.LockName, "other-process", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := e.collector(0, nil).Run(t.Context(), false); !errors.Is(err, gc.ErrBusy) {
		t.Errorf("Run while locked: %v, want ErrBusy", err)
	}
	e.clock.Add(2 * time.Hour) // the other process died: its lock expired
	e.run(e.collector(0, nil), false)

	// two runs of one collector exclude each other too
	d := e.deployment("site", 0, 0)
	e.publish(d, "one", true)
	e.publish(d, "two", true)
	busy := make(chan error, 1)
	var c *gc.Collector
	c = e.collector(0, func() { _, err := c.Run(t.Context(), false); busy <- err })
	if rep := e.run(c, false); len(rep.Collected) != 1 {
		t.Errorf("collected %+v", rep.Collected)
	}
	if err := <-busy; !errors.Is(err, gc.ErrBusy) {
		t.Errorf("a second run during the first: %v, want ErrBusy", err)
	}
}
