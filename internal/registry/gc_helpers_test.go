package registry_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
)

// gcEnv is a registry on SQLite with a fake clock shared by the store, the
// registry and the collector.
type gcEnv struct {
	*env
	clock *fakeclock.Clock
}

func newGCEnv(t *testing.T) *gcEnv {
	t.Helper()
	dir := t.TempDir()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"), sqlite.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := newEnvOn(t, dir, m, func(cfg *registry.Config) { cfg.Now = c.Now })
	e.createOCI(t, "app")
	return &gcEnv{env: e, clock: c}
}

func (e *gcEnv) collect(t *testing.T, grace time.Duration) *gc.Report {
	t.Helper()
	c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Grace: grace, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

// image pushes a config and layers (their contents) to repo and returns the
// manifest body, unpushed; subject, if set, makes it a referrer.
func (e *gcEnv) image(t *testing.T, repo, config string, subject *desc, layers ...string) []byte {
	t.Helper()
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
	cfg := `{"config":{"Cmd":["` + config + `"]}}`
	m["config"] = desc{"application/vnd.oci.image.config.v1+json", e.pushBlob(t, repo, []byte(cfg)).String(), len(cfg)}
	ls := []desc{}
	for _, l := range layers {
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar", e.pushBlob(t, repo, []byte(l)).String(), len(l)})
	}
	m["layers"] = ls
	if subject != nil {
		m["subject"] = subject
		m["config"] = desc{"application/vnd.example.sig", e.pushBlob(t, repo, []byte(cfg)).String(), len(cfg)}
	}
	b, _ := json.Marshal(m)
	return b
}

// index returns an image index body of the given manifests.
func index(children ...[]byte) []byte {
	ds := []desc{}
	for _, c := range children {
		ds = append(ds, desc{"application/vnd.oci.image.manifest.v1+json", digest.FromBytes(c).String(), len(c)})
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ds})
	return b
}

// putManifest pushes body to repo under ref (a tag or its digest).
func (e *gcEnv) putManifest(t *testing.T, repo, ref string, body []byte) *http.Response {
	t.Helper()
	var mt struct{ MediaType string }
	json.Unmarshal(body, &mt)
	resp, b := e.do(t, "PUT", "/v2/"+repo+"/manifests/"+ref, body, "Content-Type", mt.MediaType)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s:%s: %d %s", repo, ref, resp.StatusCode, b)
	}
	return resp
}

func descOf(body []byte) *desc {
	var mt struct{ MediaType string }
	json.Unmarshal(body, &mt)
	return &desc{mt.MediaType, digest.FromBytes(body).String(), len(body)}
}

// stored reports whether the blob store holds content.
func (e *gcEnv) stored(t *testing.T, content []byte) bool {
	t.Helper()
	_, err := e.blobs.Stat(t.Context(), digest.FromBytes(content))
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// status is the status of GET path.
func (e *gcEnv) status(t *testing.T, path string) int {
	t.Helper()
	resp, _ := e.do(t, "GET", path, nil)
	return resp.StatusCode
}

func configBytes(config string) []byte { return []byte(`{"config":{"Cmd":["` + config + `"]}}`) }

func (e *gcEnv) policy(t *testing.T, dep string, retention, keep int) *meta.Deployment {
	t.Helper()
	d, err := e.meta.GetDeployment(t.Context(), dep)
	if err != nil {
		t.Fatal(err)
	}
	d, err = e.meta.(meta.Policies).SetPolicy(t.Context(), d.ID, meta.Policy{RetentionDays: &retention, KeepVersions: &keep}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
