package replica

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// hooked runs a hook before a Delete; the hook may replace its result.
type hooked struct {
	blob.Store
	beforeDelete func(d digest.Digest) error
}

func (h *hooked) Delete(ctx context.Context, d digest.Digest) error {
	if f := h.beforeDelete; f != nil {
		h.beforeDelete = nil
		if err := f(d); err != nil {
			return err
		}
	}
	return h.Store.Delete(ctx, d)
}

func hookedStore(t *testing.T, e *env) (*Store, *hooked) {
	h := &hooked{Store: e.regions["eu"]}
	s, err := New(Region{"us", e.regions["us"]}, []Region{{"eu", h}}, e.meta, Options{StateTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// TestDeleteRacingPutRegionDown: a Put of the blob lands between Delete's
// primary delete and its region delete, which fails. Delete hands only its
// own row back to the Replicator: the Put's pending row stays, and eu ends
// with the copy, ready (marking it deleting, as Delete did, lost it).
func TestDeleteRacingPutRegionDown(t *testing.T) {
	e := newEnv(t, "us", "eu")
	s, h := hookedStore(t, e)
	r := fastReplicator(s)
	d := put(t, s, "re-put during delete")
	syncAll(t, r)
	h.beforeDelete = func(digest.Digest) error {
		put(t, s, "re-put during delete") // primary Put + AddReplicas: pending
		t.Logf("after re-Put: %v", e.states(d))
		return errDown
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	t.Logf("after Delete: %v", e.states(d))
	for syncAll(t, r) > 0 {
	}
	_, perr := e.regions["us"].Stat(t.Context(), d)
	t.Logf("final: primary stat err=%v, eu holds %d, rows %v", perr, e.count("eu"), e.states(d))
	if perr == nil && (e.count("eu") != 1 || e.states(d)["eu"] != "ready/") {
		t.Errorf("primary holds the re-Put blob but eu: %d copies, row %v", e.count("eu"), e.states(d))
	}
}

// TestDeleteRacingPutCopied: a Put of the blob is copied to eu between
// Delete's primary delete and its eu delete, which removes that copy. The
// row changed meanwhile, so Delete sets it pending again: no ready row is
// left without its copy.
func TestDeleteRacingPutCopied(t *testing.T) {
	e := newEnv(t, "us", "eu")
	s, h := hookedStore(t, e)
	r := fastReplicator(s)
	d := put(t, s, "re-put copied during delete")
	syncAll(t, r)
	h.beforeDelete = func(digest.Digest) error {
		put(t, s, "re-put copied during delete")
		syncAll(t, r)
		t.Logf("after re-Put+copy: %v", e.states(d))
		return nil
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for syncAll(t, r) > 0 {
	}
	_, perr := e.regions["us"].Stat(t.Context(), d)
	t.Logf("final: primary stat err=%v, eu holds %d, rows %v", perr, e.count("eu"), e.states(d))
	if e.states(d)["eu"] == "ready/" && e.count("eu") == 0 {
		t.Errorf("ready row without a copy")
	}
	if perr == nil && (e.count("eu") != 1 || e.states(d)["eu"] != "ready/") {
		t.Errorf("primary holds the blob but eu: %d copies, row %v", e.count("eu"), e.states(d))
	}
}
