package registry_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestReferrers(t *testing.T) {
	e := newEnv(t, nil)
	e.createOCI(t, "app")
	cfg := []byte(`{}`)
	cd := e.pushBlob(t, "app/web", cfg)
	subject := imageManifest(cd, len(cfg))
	sd := digest.FromBytes(subject)
	// The subject need not exist yet.
	for i, at := range []string{"application/vnd.example.sig", "application/vnd.example.sbom", ""} {
		art := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,%s"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},
			"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"n":"%d"}}`,
			ociManifest, map[bool]string{true: fmt.Sprintf(`"artifactType":%q,`, at), false: ""}[at != ""], cd, ociManifest, sd, len(subject), i)
		resp, body := e.do(t, "PUT", "/v2/app/web/manifests/"+digest.FromBytes(art).String(), art, "Content-Type", ociManifest)
		wantCode(t, "pushing a referrer", resp, body, 201, "")
		if got := resp.Header.Get("OCI-Subject"); got != sd.String() {
			t.Errorf("OCI-Subject %q, want %s", got, sd)
		}
	}
	list := func(query string) (types []string, filtered string) {
		t.Helper()
		resp, body := e.do(t, "GET", "/v2/app/web/referrers/"+sd.String()+query, nil)
		wantCode(t, "referrers"+query, resp, body, 200, "")
		if ct := resp.Header.Get("Content-Type"); ct != ociIndex {
			t.Errorf("Content-Type %q", ct)
		}
		var idx struct {
			SchemaVersion int
			MediaType     string
			Manifests     []struct {
				ArtifactType string
				Annotations  map[string]string
			}
		}
		if err := json.Unmarshal(body, &idx); err != nil || idx.SchemaVersion != 2 || idx.MediaType != ociIndex {
			t.Fatalf("referrers body %s: %v", body, err)
		}
		for _, m := range idx.Manifests {
			types = append(types, m.ArtifactType)
			if m.Annotations["n"] == "" {
				t.Errorf("annotations missing: %+v", m)
			}
		}
		return types, resp.Header.Get("OCI-Filters-Applied")
	}
	if types, f := list(""); len(types) != 3 || f != "" {
		t.Errorf("all referrers: %v, filters %q", types, f)
	}
	// Without an artifactType, an image's type is its config media type.
	if types, f := list("?artifactType=application/vnd.oci.empty.v1%2Bjson"); len(types) != 1 || f != "artifactType" {
		t.Errorf("filtered by the config type: %v, filters %q", types, f)
	}
	if types, f := list("?artifactType=application/vnd.example.sig"); len(types) != 1 || types[0] != "application/vnd.example.sig" || f != "artifactType" {
		t.Errorf("filtered: %v, filters %q", types, f)
	}
	resp, body := e.do(t, "GET", "/v2/app/other/referrers/"+sd.String(), nil)
	if resp.StatusCode != 200 || !json.Valid(body) {
		t.Errorf("referrers in another repository: %d %s", resp.StatusCode, body)
	}
}

// TestConcurrentFirstPushes pushes into a deployment that does not exist yet
// from several clients at once: one deployment, every push succeeds, and
// none activates anything.
func TestConcurrentFirstPushes(t *testing.T) { testConcurrentFirstPushes(t, newEnv) }

func testConcurrentFirstPushes(t *testing.T, newEnv newEnvFunc) {
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		img := runnable(t, 1, []string{"/x"}, nil)
		wg.Go(func() {
			if err := pushErr(e, img, fmt.Sprintf("fresh:v%d", i)); err != nil {
				t.Errorf("push %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	deps, err := e.meta.ListDeployments(t.Context())
	if err != nil || len(deps) != 1 || deps[0].Name != "fresh" || deps[0].ActiveVersionID != nil {
		t.Fatalf("deployments %+v, %v", deps, err)
	}
	if vs, err := e.meta.ListVersions(t.Context(), deps[0].ID, 0, 0); err != nil || len(vs) != 8 {
		t.Errorf("%d versions, %v; want 8", len(vs), err)
	}
}
