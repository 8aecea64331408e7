package gc_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/blob/replica"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/lease"
)

// TestOrphans: blobs without a live release are deleted once seen for the
// grace period, including the bytes a crash left between the collecting
// transaction and the deletion; leased blobs are not orphans.
func TestOrphans(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.collector(time.Hour, nil)
	put := func(s string) string {
		b := []byte(s)
		d := digest.FromBytes(b)
		if err := e.blobs.Put(ctx, d, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d.Encoded()
	}
	stray, leased := put("stray"), put("in flight")
	drop, err := lease.Hold(ctx, e.meta, leased)
	if err != nil {
		t.Fatal(err)
	}
	defer drop()

	// a crash after the collecting transaction: collected, bytes still there
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	now := e.clock.Now()
	if _, err := e.meta.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now); err != nil {
		t.Fatal(err)
	}
	if cs, err := e.meta.CollectReleases(ctx, []string{v1.ArtifactSHA256}, now, now, "crashed", time.Minute); err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	e.clock.Add(2 * time.Minute) // the crashed collector's claim expires

	rep := e.run(c, false)
	if len(rep.Orphans) != 0 || !e.blobExists(stray) || !e.blobExists(v1.ArtifactSHA256) {
		t.Fatalf("first sighting deleted %+v", rep.Orphans)
	}
	e.clock.Add(time.Hour)
	rep = e.run(c, false)
	got := map[string]string{}
	for _, o := range rep.Orphans {
		got[o.Digest] = o.Reason
	}
	want := map[string]string{"sha256:" + stray: "no-release", "sha256:" + v1.ArtifactSHA256: "collected-release"}
	if len(got) != 2 || got["sha256:"+stray] != want["sha256:"+stray] ||
		got["sha256:"+v1.ArtifactSHA256] != want["sha256:"+v1.ArtifactSHA256] {
		t.Errorf("orphans deleted %v, want %v", got, want)
	}
	if e.blobExists(stray) || e.blobExists(v1.ArtifactSHA256) {
		t.Error("orphans still stored")
	}
	if !e.blobExists(leased) {
		t.Error("a leased blob was deleted")
	}
	if rep.Totals.OrphansDeleted != 2 || rep.Totals.OrphanBytesFreed == 0 {
		t.Errorf("totals %+v", rep.Totals)
	}
}

func (e *env) blobExists(sha string) bool {
	_, err := e.blobs.Stat(e.t.Context(), digest.NewDigestFromEncoded(digest.SHA256, sha))
	return err == nil
}

// TestOrphanStrays: with several regions, a copy that only a secondary
// region holds (its primary blob gone, no release) is swept like any orphan,
// while the copies of a live release are not.
func TestOrphanStrays(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	eu, err := fs.New(filepath.Join(t.TempDir(), "eu"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := replica.New(replica.Region{Name: "us", Store: e.blobs}, []replica.Region{{Name: "eu", Store: eu}}, e.meta, replica.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.deployment("site", 0, 0)
	live := e.publish(d, "live", true)
	for _, b := range [][]byte{[]byte("stray copy"), nil} {
		dg := digest.FromBytes(b)
		if b == nil { // a live release's copy
			dg = digest.NewDigestFromEncoded(digest.SHA256, live.ArtifactSHA256)
			rc, err := e.blobs.Open(ctx, dg, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(rc)
			rc.Close()
		}
		if err := eu.Put(ctx, dg, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	stray := digest.FromBytes([]byte("stray copy"))
	c, err := gc.New(gc.Config{Meta: e.meta, Blobs: rs, Strays: rs, Grace: time.Hour, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if rep := e.run(c, false); len(rep.Orphans) != 0 {
		t.Fatalf("first sighting deleted %+v", rep.Orphans)
	}
	e.clock.Add(2 * time.Hour)
	rep := e.run(c, false)
	if len(rep.Orphans) != 1 || rep.Orphans[0].Digest != stray.String() || rep.Orphans[0].SizeBytes != int64(len("stray copy")) {
		t.Fatalf("orphans %+v, want only the stray %s", rep.Orphans, stray)
	}
	if _, err := eu.Stat(ctx, stray); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("the stray is still in eu: %v", err)
	}
	if _, err := eu.Stat(ctx, digest.NewDigestFromEncoded(digest.SHA256, live.ArtifactSHA256)); err != nil {
		t.Errorf("the live release's copy was deleted: %v", err)
	}
}
