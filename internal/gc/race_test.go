package gc_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// TestActivateBeforeCollect: an activation committed after the mark and
// before the collecting transaction cancels the collection.
func TestActivateBeforeCollect(t *testing.T) {
	e := newEnv(t)
	c := e.collector(time.Hour, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	if rep := e.run(c, false); len(rep.Marked) != 1 {
		t.Fatalf("marked %+v", rep.Marked)
	}
	if _, err := e.meta.Activate(t.Context(), d.ID, 1, "x", meta.ActionRollback); err != nil {
		t.Fatalf("rollback to a marked version: %v", err)
	}
	e.clock.Add(2 * time.Hour)
	rep := e.run(c, false)
	if len(rep.Cancelled) != 1 || rep.Cancelled[0].Reason != meta.RootActive || len(rep.Collected) != 0 {
		t.Fatalf("cancelled %+v, collected %+v; want v1's collection cancelled by active", rep.Cancelled, rep.Collected)
	}
	e.wantKept(v1, true)
}

// TestActivateAfterCollect: once the collecting transaction committed, an
// activation answers ErrGone, before and after the bytes are deleted.
func TestActivateAfterCollect(t *testing.T) {
	e := newEnv(t)
	var d *meta.Deployment
	var during error
	c := e.collector(0, func() {
		_, during = e.meta.Activate(t.Context(), d.ID, 1, "x", meta.ActionRollback)
	})
	d = e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	if rep := e.run(c, false); len(rep.Collected) != 1 {
		t.Fatalf("collected %+v", rep.Collected)
	}
	if !errors.Is(during, meta.ErrGone) {
		t.Errorf("activate between commit and delete: %v, want ErrGone", during)
	}
	if _, err := e.meta.Activate(t.Context(), d.ID, 1, "x", meta.ActionActivate); !errors.Is(err, meta.ErrGone) {
		t.Errorf("activate after delete: %v, want ErrGone", err)
	}
	e.wantKept(v1, false)
}

// TestPublishWhileMarked: publishing the bytes of a marked release re-roots
// it (the lease clears the mark); nothing is collected.
func TestPublishWhileMarked(t *testing.T) {
	e := newEnv(t)
	c := e.collector(time.Hour, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	e.run(c, false)
	v3 := e.publish(d, "one", true) // same bytes as v1
	e.clock.Add(2 * time.Hour)
	rep := e.run(c, false)
	if len(rep.Collected) != 0 || keptBy(rep, v1.ArtifactSHA256) != meta.RootActive {
		t.Errorf("collected %+v, v1's release kept by %q", rep.Collected, keptBy(rep, v1.ArtifactSHA256))
	}
	e.wantKept(v1, true)
	e.wantKept(v3, true)
}

// TestPublishWhileDeleting: a publish of a release whose bytes are being
// deleted waits for the deletion, then stores the bytes again, so its
// version never exists without them.
func TestPublishWhileDeleting(t *testing.T) {
	e := newEnv(t)
	var d *meta.Deployment
	done := make(chan *meta.Version, 1)
	c := e.collector(0, func() {
		go func() { done <- e.publish(d, "one", true) }()
		// the publish must find the deletion claim: wait until it did
		for deadline := time.Now().Add(10 * time.Second); e.meta.waited.Load() == 0; {
			if time.Now().After(deadline) {
				t.Error("the publish never waited for the deletion")
				return
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // a publish that did not wait would commit now
	})
	d = e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	rep := e.run(c, false)
	if len(rep.Collected) != 1 || !rep.Collected[0].Deleted {
		t.Fatalf("collected %+v", rep.Collected)
	}
	v3 := <-done
	if v3.ArtifactSHA256 != v1.ArtifactSHA256 || !e.hasBlob(v3.ArtifactSHA256) {
		t.Fatalf("v3 %s: bytes stored %v", v3.ArtifactSHA256, e.hasBlob(v3.ArtifactSHA256))
	}
	rel, err := e.meta.GetRelease(t.Context(), v3.ArtifactSHA256)
	if err != nil || rel.CollectedAt != nil {
		t.Errorf("release after the new publish: %+v, %v; want live again", rel, err)
	}
	if got := e.version(v1.ID); got.Status != meta.StatusCollected {
		t.Errorf("v1 after its bytes came back: %s, want it to stay collected", got.Status)
	}
	e.wantKept(v3, true)
}

// TestDryRun: a dry run reports and changes nothing.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	stray := []byte("not a release")
	if err := e.blobs.Put(t.Context(), digest.FromBytes(stray), int64(len(stray)), bytes.NewReader(stray)); err != nil {
		t.Fatal(err)
	}
	before := e.state()
	rep := e.run(c, true)
	if !rep.DryRun || len(rep.Collected) != 1 || rep.Collected[0].SHA256 != v1.ArtifactSHA256 || len(rep.Orphans) != 1 {
		t.Errorf("dry run: collected %+v, orphans %+v", rep.Collected, rep.Orphans)
	}
	if after := e.state(); after != before {
		t.Errorf("a dry run changed the state:\n%s\n->\n%s", before, after)
	}
	rep = e.run(c, false)
	if len(rep.Collected) != 1 || len(rep.Orphans) != 1 {
		t.Errorf("real run: collected %+v, orphans %+v", rep.Collected, rep.Orphans)
	}
}

// state summarises versions, releases, events and blobs.
func (e *env) state() string {
	var b strings.Builder
	ctx := e.t.Context()
	ds, _ := e.meta.ListDeployments(ctx)
	for _, d := range ds {
		vs, _ := e.meta.ListVersions(ctx, d.ID, 0, 0)
		for _, v := range vs {
			rel, _ := e.meta.GetRelease(ctx, v.ArtifactSHA256)
			fmt.Fprintln(&b, v.ID, v.Status, rel.SHA256, rel.CollectedAt)
		}
	}
	evs, _ := e.meta.ListEvents(ctx, meta.EventFilter{})
	snap, _ := e.meta.GCSnapshot(ctx, e.clock.Now())
	var marked int
	for _, r := range snap.Releases {
		if r.CollectingAt != nil {
			marked++
		}
	}
	n := 0
	e.blobs.List(ctx, func(blob.Info) error { n++; return nil })
	b.WriteString(strings.Repeat("e", len(evs)) + strings.Repeat("b", n) + strings.Repeat("m", marked) +
		strings.Repeat("o", len(snap.Orphans)))
	return b.String()
}
