package registry_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/gc"
)

// TestGCPushRacingCollection: a push of an image whose blobs are old and
// unreferenced, racing a collection with no grace period, ends with the
// manifest and every blob present: blob uploads and manifest pushes hold
// the publish lease, and the collection re-checks the registry in its
// transaction (a failed manifest push, its blobs collected first, is
// retried as a client would).
func TestGCPushRacingCollection(t *testing.T) {
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
