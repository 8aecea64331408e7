package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
	"github.com/cairnhq/cairn/internal/server"
)

// TestOCIAcrossAPIProcesses: two `cairn server --roles api` processes share
// one PostgreSQL database and one blob store behind a round-robin balancer,
// so each request of a push (POST, PATCH, PUT of every blob) lands on the
// other process than the one before. A standard client pushes and pulls an
// image through it.
func TestOCIAcrossAPIProcesses(t *testing.T) {
	var cfg server.Config
	useBackends(t, &cfg)
	if cfg.Database == "" {
		cfg.Database, _ = pgtest.FreshSchema(t)
	}
	dir := t.TempDir()
	if cfg.Blobs == "" {
		cfg.Blobs = "file://" + filepath.Join(dir, "shared-blobs")
	}
	common := []string{"--database", cfg.Database, "--blobs", cfg.Blobs, "--token", sharedToken, "--roles", "api"}
	var backends []*httputil.ReverseProxy
	for _, p := range []string{"a", "b"} {
		addr := freeAddr(t)
		process(t, dir, append(common, "--api-addr", addr, "--data", filepath.Join(dir, p))...)
		waitListen(t, addr)
		backends = append(backends, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr}))
	}
	var n atomic.Int64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backends[n.Add(1)%2].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)

	host := strings.TrimPrefix(lb.URL, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: sharedToken})
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/shared:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push through two API processes: %v", err)
	}
	got, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("pulled %d layers (%v), want 3", len(layers), err)
	}
	for _, l := range layers { // reading to EOF verifies each layer's digest
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer: %v", err)
		}
		rc.Close()
	}
	if n.Load() < 10 {
		t.Errorf("only %d requests went through the balancer", n.Load())
	}
}
