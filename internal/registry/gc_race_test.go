package registry_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
)

// TestGCPushRacingCollection: a push of an image whose blobs are old and
// unreferenced, racing a collection with no grace period, ends with the
// manifest and every blob present: blob uploads and manifest pushes hold
// the publish lease, and the collection re-checks the registry in its
// transaction (a failed manifest push, its blobs collected first, is
// retried as a client would).
func TestGCPushRacingCollection(t *testing.T) { testGCPushRacingCollection(t, newGCEnv) }

func testGCPushRacingCollection(t *testing.T, newGCEnv func(*testing.T) *gcEnv) {
	e := newGCEnv(t)
	col, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	type pushed struct{ manifest, config, layer []byte }
	var all []pushed
	for i := range 20 {
		name, layer := fmt.Sprintf("race-%d", i), fmt.Sprintf("race-layer-%d", i)
		e.image(t, "app/race", name, nil, layer) // linked, never referenced
		e.clock.Add(2 * time.Hour)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := col.Run(t.Context(), false); err != nil && err != gc.ErrBusy {
				t.Errorf("gc run: %v", err)
			}
		})
		var body []byte
		ok := false
		for attempt := 0; attempt < 5 && !ok; attempt++ {
			body = e.image(t, "app/race", name, nil, layer)
			resp, b := e.do(t, "PUT", "/v2/app/race/manifests/"+name, body,
				"Content-Type", "application/vnd.oci.image.manifest.v1+json")
			ok = resp.StatusCode == http.StatusCreated
			if !ok && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("push %s: %d %s", name, resp.StatusCode, b)
			}
		}
		wg.Wait()
		if !ok {
			t.Fatalf("push %s never succeeded", name)
		}
		all = append(all, pushed{body, configBytes(name), []byte(layer)})
	}
	e.clock.Add(2 * time.Hour)
	e.collect(t, 0)
	for i, p := range all {
		for _, c := range [][]byte{p.manifest, p.config, p.layer} {
			if !e.stored(t, c) {
				t.Errorf("image %d: %.40s is not stored", i, c)
			}
			if got := e.status(t, "/v2/app/race/blobs/"+digest.FromBytes(c).String()); got != http.StatusOK &&
				string(c) != string(p.manifest) {
				t.Errorf("image %d: GET blob %.40s: %d", i, c, got)
			}
		}
		if got := e.status(t, fmt.Sprintf("/v2/app/race/manifests/race-%d", i)); got != http.StatusOK {
			t.Errorf("image %d: GET manifest: %d", i, got)
		}
	}
}

// TestGCCollectOCIRechecks: a collection decided on a graph the registry no
// longer matches (a manifest pushed since) is cancelled in its transaction,
// as is one whose blob is leased by a push in progress.
func TestGCCollectOCIRechecks(t *testing.T) { testGCCollectOCIRechecks(t, newGCEnv) }

func testGCCollectOCIRechecks(t *testing.T, newGCEnv func(*testing.T) *gcEnv) {
	e := newGCEnv(t)
	ctx := t.Context()
	og := e.meta.(meta.OCIGC)
	loose := e.image(t, "app/x", "loose", nil, "loose-layer")
	e.putManifest(t, "app/x", digest.FromBytes(loose).String(), loose)
	e.clock.Add(2 * time.Hour)
	g, err := og.OCIGraph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	layer := meta.OCIRef{Repository: "app/x", Digest: digest.FromBytes([]byte("loose-layer")).String()}
	c := meta.OCICollect{Graph: g, Manifests: []meta.OCIRef{{Repository: "app/x", Digest: digest.FromBytes(loose).String()}},
		Blobs: []meta.OCIRef{layer}, Cutoff: e.clock.Now().Add(-time.Hour), MarkedBefore: e.clock.Now(), Now: e.clock.Now(),
		Holder: "test", TTL: time.Minute}

	drop, err := lease.Hold(ctx, e.meta, digest.FromBytes([]byte("loose-layer")).Encoded())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := og.CollectOCI(ctx, c); err != nil || res.Cancelled == "" {
		t.Errorf("leased layer: %+v, %v; want cancelled", res, err)
	}
	drop()
	other := e.image(t, "app/x", "other", nil, "other-layer")
	e.putManifest(t, "app/x", "t", other)
	if res, err := og.CollectOCI(ctx, c); err != nil || res.Cancelled == "" {
		t.Errorf("registry changed: %+v, %v; want cancelled", res, err)
	}
	if got := e.status(t, "/v2/app/x/manifests/"+digest.FromBytes(loose).String()); got != http.StatusOK {
		t.Errorf("cancelled collections deleted the manifest: %d", got)
	}
	if c.Graph, err = og.OCIGraph(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := og.CollectOCI(ctx, c)
	if err != nil || res.Cancelled != "" || res.Manifests != 1 || res.Blobs != 1 {
		t.Errorf("re-decided collection: %+v, %v; want one manifest and one blob link deleted", res, err)
	}
}
