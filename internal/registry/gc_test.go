package registry_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
)

// TestGCCollectsOCIVersions: an oci deployment with v2 active and v1
// archived past retention and untagged loses v1's manifest and the layers
// only v1 used, two-phase (marked, collected after the grace period, bytes
// deleted by the orphan sweep after another); shared layers, v2, a referrer
// of v2, a tagged manifest and an index's children are kept.
func TestGCCollectsOCIVersions(t *testing.T) { testGCCollectsOCIVersions(t, newGCEnv) }

func testGCCollectsOCIVersions(t *testing.T, newGCEnv func(*testing.T) *gcEnv) {
	e := newGCEnv(t)
	ctx := t.Context()
	v1 := e.image(t, "app", "one", nil, "shared", "only-v1")
	e.putManifest(t, "app", "v1", v1)
	e.clock.Add(time.Minute)
	v2 := e.image(t, "app", "two", nil, "shared", "only-v2")
	e.putManifest(t, "app", "v2", v2)
	sig := e.image(t, "app", "sig", descOf(v2), "signature")
	e.putManifest(t, "app", digest.FromBytes(sig).String(), sig)
	if resp, b := e.do(t, "DELETE", "/v2/app/manifests/v1", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("untagging v1: %d %s", resp.StatusCode, b)
	}
	dep := e.policy(t, "app", 0, 0)

	tagged := e.image(t, "app/other", "tagged", nil, "tagged-layer")
	e.putManifest(t, "app/other", "keep", tagged)
	loose := e.image(t, "app/other", "loose", nil, "loose-layer")
	e.putManifest(t, "app/other", digest.FromBytes(loose).String(), loose)
	c1 := e.image(t, "app/other", "child1", nil, "child-1")
	c2 := e.image(t, "app/other", "child2", nil, "child-2")
	e.putManifest(t, "app/other", digest.FromBytes(c1).String(), c1)
	e.putManifest(t, "app/other", digest.FromBytes(c2).String(), c2)
	idx := index(c1, c2)
	e.putManifest(t, "app/other", "multi", idx)

	v1sha := digest.FromBytes(v1).Encoded()
	e.clock.Add(2 * time.Hour)
	rep := e.collect(t, time.Hour)
	if len(rep.Marked) != 1 || rep.Marked[0].SHA256 != v1sha {
		t.Fatalf("first run marked %+v, want v1's release only", rep.Marked)
	}
	if got := e.status(t, "/v2/app/manifests/"+digest.FromBytes(v1).String()); got != http.StatusOK {
		t.Errorf("v1's manifest while marked: %d, want 200", got)
	}
	if got := e.status(t, "/v2/app/other/manifests/"+digest.FromBytes(loose).String()); got != http.StatusNotFound {
		t.Errorf("an untagged old manifest: %d, want 404 (collected)", got)
	}

	e.clock.Add(2 * time.Hour)
	rep = e.collect(t, time.Hour)
	if len(rep.Collected) != 1 || rep.Collected[0].SHA256 != v1sha || len(rep.Collected[0].Versions) != 1 {
		t.Fatalf("second run collected %+v, want v1's release and version", rep.Collected)
	}
	e.clock.Add(2 * time.Hour)
	e.collect(t, time.Hour) // the orphan sweep deletes the bytes left without rows

	if e.stored(t, v1) || e.stored(t, []byte("only-v1")) || e.stored(t, configBytes("one")) ||
		e.stored(t, loose) || e.stored(t, []byte("loose-layer")) {
		t.Error("v1's manifest, config or own layer, or the loose image, is still stored")
	}
	for _, c := range [][]byte{v2, []byte("shared"), []byte("only-v2"), configBytes("two"), sig, []byte("signature"),
		tagged, []byte("tagged-layer"), idx, c1, c2, []byte("child-1"), []byte("child-2")} {
		if !e.stored(t, c) {
			t.Errorf("%.60s was deleted, want kept", c)
		}
	}
	for _, p := range []string{
		"/v2/app/manifests/v2", "/v2/app/manifests/" + digest.FromBytes(sig).String(),
		"/v2/app/blobs/" + digest.FromBytes([]byte("shared")).String(),
		"/v2/app/other/manifests/keep", "/v2/app/other/manifests/multi",
		"/v2/app/other/manifests/" + digest.FromBytes(c2).String(),
		"/v2/app/other/blobs/" + digest.FromBytes([]byte("child-1")).String(),
	} {
		if got := e.status(t, p); got != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, got)
		}
	}
	for _, p := range []string{"/v2/app/manifests/" + digest.FromBytes(v1).String(),
		"/v2/app/blobs/" + digest.FromBytes([]byte("only-v1")).String()} {
		if got := e.status(t, p); got != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, got)
		}
	}
	v, err := e.meta.GetVersionByNumber(ctx, dep.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != meta.StatusCollected {
		t.Errorf("v1 status %s, want collected", v.Status)
	}
	if _, err := e.meta.Activate(ctx, dep.ID, 1, "test", "rollback"); !errors.Is(err, meta.ErrGone) {
		t.Errorf("activating v1 after collection: %v, want ErrGone (410)", err)
	}
}

// TestGCOCINoGrace: with no grace period, one run collects an unreachable
// version's manifest, its release and the bytes only it used.
func TestGCOCINoGrace(t *testing.T) { testGCOCINoGrace(t, newGCEnv) }

func testGCOCINoGrace(t *testing.T, newGCEnv func(*testing.T) *gcEnv) {
	e := newGCEnv(t)
	v1 := e.image(t, "app", "one", nil, "shared", "only-v1")
	e.putManifest(t, "app", "v1", v1)
	v2 := e.image(t, "app", "two", nil, "shared")
	e.putManifest(t, "app", "v2", v2)
	e.do(t, "DELETE", "/v2/app/manifests/v1", nil)
	e.policy(t, "app", 0, 0)
	e.clock.Add(time.Minute)
	rep := e.collect(t, 0)
	if len(rep.Collected) != 1 || rep.Registry == nil || rep.Registry.ManifestsDeleted != 1 {
		t.Fatalf("collected %+v, registry %+v: want v1 only", rep.Collected, rep.Registry)
	}
	if e.stored(t, v1) || e.stored(t, []byte("only-v1")) || !e.stored(t, []byte("shared")) || !e.stored(t, v2) {
		t.Error("want v1's manifest and own layer deleted, the shared layer and v2 kept")
	}
}
