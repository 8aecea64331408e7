package replica

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// TestReplicate: Put → pending in every other region; the Replicator makes
// them ready; Delete removes every copy and every row.
func TestReplicate(t *testing.T) {
	e := newEnv(t, "us", "eu", "ap")
	s := e.store("")
	d := put(t, s, "hello regions")
	if got := e.states(d); got["eu"] != "pending/" || got["ap"] != "pending/" || len(got) != 2 {
		t.Fatalf("after Put: %v, want eu and ap pending", got)
	}
	if e.count("eu")+e.count("ap") != 0 {
		t.Fatal("Put wrote to a non-primary region")
	}
	if n := syncAll(t, fastReplicator(s)); n != 2 {
		t.Errorf("Sync handled %d rows, want 2", n)
	}
	if got := e.states(d); got["eu"] != "ready/" || got["ap"] != "ready/" {
		t.Fatalf("after Sync: %v, want ready", got)
	}
	if got := readAll(t, e.regions["ap"], d); got != "hello regions" {
		t.Errorf("ap holds %q", got)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if n := e.count("us") + e.count("eu") + e.count("ap"); n != 0 || e.rows() != 0 {
		t.Errorf("after Delete: %d blobs, %d rows left", n, e.rows())
	}
}

// TestRetryRecovers: a region that fails is marked failed with a reason and
// retried with backoff until it recovers.
func TestRetryRecovers(t *testing.T) {
	e := newEnv(t, "us", "eu", "ap")
	e.regions["eu"].broken.Store(true)
	s := e.store("")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { fastReplicator(s).Run(ctx) })

	d := put(t, s, "retry me")
	waitFor(t, "eu failed, ap ready", func() bool {
		st := e.states(d)
		return st["eu"] == "failed/unreachable" && st["ap"] == "ready/"
	})
	waitFor(t, "several tries", func() bool {
		st, _ := e.meta.ReplicaStatuses(t.Context(), string(d))
		return st["eu"].Attempts >= 3 && st["eu"].NextTryAt != nil
	})
	e.regions["eu"].broken.Store(false)
	waitFor(t, "eu ready", func() bool { return e.states(d)["eu"] == "ready/" })
	if got := readAll(t, e.regions["eu"], d); got != "retry me" {
		t.Errorf("eu holds %q", got)
	}
}

// TestFallbackOrder: local region first, then the others in order, the
// primary last; only ready copies are read.
func TestFallbackOrder(t *testing.T) {
	e := newEnv(t, "us", "eu", "ap")
	w := e.store("")
	d := put(t, w, "ordered")
	opens := func() string {
		var b strings.Builder
		for _, n := range e.names {
			b.WriteString(n + "=" + map[bool]string{true: "x", false: "-"}[e.regions[n].opens.Swap(0) > 0] + " ")
		}
		return strings.TrimSpace(b.String())
	}
	check := func(what, want string) {
		t.Helper()
		opens()
		if got := readAll(t, e.store("ap"), d); got != "ordered" {
			t.Fatalf("%s: read %q", what, got)
		}
		if got := opens(); got != want {
			t.Errorf("%s: opened %s, want %s", what, got, want)
		}
	}
	check("nothing copied yet", "us=x eu=- ap=-")
	syncAll(t, fastReplicator(w))
	check("all ready", "us=- eu=- ap=x")
	e.regions["ap"].broken.Store(true)
	check("local region down", "us=- eu=x ap=x")
	s := e.store("ap")
	readAll(t, s, d)
	opens()
	if readAll(t, s, d); opens() != "us=- eu=x ap=-" {
		t.Errorf("a region that just failed was read again")
	}
	e.regions["eu"].broken.Store(true)
	check("both replicas down", "us=x eu=x ap=x")

	// A region whose copy is not ready is not read even when it is local.
	e.regions["ap"].broken.Store(false)
	e.regions["eu"].broken.Store(false)
	d2 := put(t, w, "not yet")
	opens()
	if got := readAll(t, e.store("ap"), d2); got != "not yet" {
		t.Fatal(got)
	}
	if got := opens(); got != "us=x eu=- ap=-" {
		t.Errorf("pending copies: opened %s", got)
	}
}

// blobPath is where fs keeps d under dir.
func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, string(d.Algorithm()), d.Encoded()[:2], d.Encoded())
}

// TestCorruptReplicaFallsBack: a ready copy with wrong bytes is never
// served; it is reported, then repaired by the Replicator.
func TestCorruptReplicaFallsBack(t *testing.T) {
	e := newEnv(t, "us", "eu")
	w := e.store("")
	d := put(t, w, "the right bytes")
	r := fastReplicator(w)
	syncAll(t, r)
	p := blobPath(e.regions["eu"].dir, d)
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, []byte("the wrong bytes"), 0o600); err != nil { // same size
		t.Fatal(err)
	}
	s := e.store("eu")
	if got := readAll(t, s, d); got != "the right bytes" {
		t.Fatalf("read %q from a corrupt replica", got)
	}
	if info, err := s.Stat(t.Context(), d); err != nil || info.Size != 15 {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if got := e.states(d)["eu"]; got != "failed/corrupt" {
		t.Errorf("eu: %s, want failed/corrupt", got)
	}
	syncAll(t, r)
	if got := e.states(d)["eu"]; got != "ready/" {
		t.Fatalf("after repair: eu %s", got)
	}
	e.regions["us"].opens.Store(0)
	if got := readAll(t, e.store("eu"), d); got != "the right bytes" || e.regions["us"].opens.Load() != 0 {
		t.Errorf("after repair: read %q, %d opens of the primary", got, e.regions["us"].opens.Load())
	}
}

// TestMissingReplicaFallsBack: a ready copy that vanished falls back and is
// reported missing.
func TestMissingReplicaFallsBack(t *testing.T) {
	e := newEnv(t, "us", "eu")
	w := e.store("")
	d := put(t, w, "here and gone")
	syncAll(t, fastReplicator(w))
	if err := e.regions["eu"].Store.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, e.store("eu"), d); got != "here and gone" {
		t.Fatalf("read %q", got)
	}
	if got := e.states(d)["eu"]; got != "failed/missing" {
		t.Errorf("eu: %s, want failed/missing", got)
	}
}

// TestDeleteUnreachableRegion: Delete succeeds with a region down; the
// Replicator deletes its copy once it is back.
func TestDeleteUnreachableRegion(t *testing.T) {
	e := newEnv(t, "us", "eu")
	s := e.store("")
	d := put(t, s, "delete me everywhere")
	r := fastReplicator(s)
	syncAll(t, r)
	e.regions["eu"].broken.Store(true)
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatalf("Delete with eu down: %v", err)
	}
	if got := e.states(d)["eu"]; got != "deleting/" {
		t.Errorf("eu: %s, want deleting", got)
	}
	syncAll(t, r)
	if got := e.states(d)["eu"]; got != "deleting/unreachable" {
		t.Errorf("eu: %s, want deleting/unreachable", got)
	}
	e.regions["eu"].broken.Store(false)
	waitFor(t, "the copy deleted", func() bool { r.Sync(t.Context()); return e.rows() == 0 })
	if e.count("eu") != 0 {
		t.Error("eu still holds the blob")
	}
	if err := s.Delete(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
}

// TestCopyRacesDelete: a copy that lands after the blob was deleted is
// deleted again.
func TestCopyRacesDelete(t *testing.T) {
	e := newEnv(t, "us", "eu")
	s := e.store("")
	d := put(t, s, "short-lived")
	e.regions["eu"].beforePut = func(digest.Digest) {
		if err := s.Delete(context.Background(), d); err != nil {
			t.Errorf("Delete: %v", err)
		}
	}
	r := fastReplicator(s)
	syncAll(t, r) // copies while the blob is deleted
	e.regions["eu"].beforePut = nil
	if e.count("eu") != 1 || e.states(d)["eu"] != "deleting/" {
		t.Fatalf("after the race: eu holds %d, state %v", e.count("eu"), e.states(d))
	}
	syncAll(t, r)
	if e.count("eu") != 0 || e.rows() != 0 {
		t.Errorf("the late copy was not deleted: %d blobs, %d rows", e.count("eu"), e.rows())
	}
}

// TestListStrays: ListStrays lists, once, the copies that only regions other
// than the primary hold, passes over a region that cannot be listed, and
// Delete removes such a stray.
func TestListStrays(t *testing.T) {
	e := newEnv(t, "us", "eu", "ap")
	s := e.store("")
	d := put(t, s, "in every region")
	syncAll(t, fastReplicator(s))
	stray := []byte("left behind in eu and ap")
	sd := digest.FromBytes(stray)
	for _, r := range []string{"eu", "ap"} {
		if err := e.regions[r].Store.Put(t.Context(), sd, int64(len(stray)), bytes.NewReader(stray)); err != nil {
			t.Fatal(err)
		}
	}
	known := func() func(digest.Digest) bool { // what List gives, as the GC passes it
		listed := map[digest.Digest]bool{}
		if err := s.List(t.Context(), func(i blob.Info) error { listed[i.Digest] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		return func(d digest.Digest) bool { return listed[d] }
	}
	strays := func() map[digest.Digest]int {
		got := map[digest.Digest]int{}
		if err := s.ListStrays(t.Context(), known(), func(i blob.Info) error { got[i.Digest]++; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := strays(); len(got) != 1 || got[sd] != 1 {
		t.Fatalf("ListStrays: %v, want the stray %s once (not %s)", got, sd, d)
	}
	e.regions["eu"].broken.Store(true)
	e.regions["ap"].broken.Store(true)
	if got := strays(); len(got) != 0 {
		t.Fatalf("ListStrays with eu and ap down: %v, want none", got)
	}
	e.regions["eu"].broken.Store(false)
	e.regions["ap"].broken.Store(false)
	stop := errors.New("stop")
	if err := s.ListStrays(t.Context(), known(), func(blob.Info) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ListStrays returned %v, want fn's error", err)
	}
	// The store never held the stray (reads pass over it): Delete answers
	// not found, and removes it all the same.
	if err := s.Delete(t.Context(), sd); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Delete of the stray: %v, want ErrNotFound", err)
	}
	if got := strays(); len(got) != 0 || e.count("eu") != 1 || e.count("ap") != 1 {
		t.Fatalf("after Delete: strays %v, eu holds %d, ap %d", got, e.count("eu"), e.count("ap"))
	}
}
