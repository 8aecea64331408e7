package edge

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/release"
)

// env is a real edge: SQLite metadata and filesystem blobs in a temporary
// directory, served by an httptest server.
type env struct {
	t       testing.TB
	meta    *sqlite.Store
	blobs   *fs.Store
	blobDir string
	edge    *Edge
	srv     *httptest.Server
	client  *http.Client
}

func newEnv(t testing.TB, cfg Config, opts ...func(*Edge)) *env {
	t.Helper()
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	blobDir := filepath.Join(dir, "blobs")
	b, err := fs.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Meta, cfg.Blobs, cfg.BaseDomain = m, b, "localhost"
	e := New(cfg)
	for _, o := range opts {
		o(e)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	client := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &env{t: t, meta: m, blobs: b, blobDir: blobDir, edge: e, srv: srv, client: client}
}

func (v *env) deploy(name string) *meta.Deployment {
	v.t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindStatic}
	if err := v.meta.CreateDeployment(context.Background(), d, "test"); err != nil {
		v.t.Fatal(err)
	}
	return d
}

// publish packs tree (path → content; a content "symlink:T" makes a
// symlink to T), stores it and registers a version.
func (v *env) publish(d *meta.Deployment, tree map[string]string, activate bool) (*meta.Version, *release.Result) {
	v.t.Helper()
	return v.publishEntry(d, tree, activate, "")
}

// publishEntry is publish with an entrypoint recorded in the manifest.
func (v *env) publishEntry(d *meta.Deployment, tree map[string]string, activate bool, entrypoint string) (*meta.Version, *release.Result) {
	v.t.Helper()
	ctx := context.Background()
	root := v.t.TempDir()
	for p, content := range tree {
		abs := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			v.t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			err = os.Symlink(target, abs)
		} else if p == "" || strings.HasSuffix(p, "/") {
			err = os.MkdirAll(abs, 0o755)
		} else {
			err = os.WriteFile(abs, []byte(content), 0o644)
		}
		if err != nil {
			v.t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	res, err := release.PackDir(ctx, root, &buf, release.PackOptions{})
	if err != nil {
		v.t.Fatal(err)
	}
	dg := digest.Digest("sha256:" + res.SHA256)
	if err := v.blobs.Put(ctx, dg, res.Size, &buf); err != nil {
		v.t.Fatal(err)
	}
	m := res.TOC.Manifest(entrypoint)
	ver, err := v.meta.CreateVersion(ctx, meta.NewVersion{
		DeploymentID: d.ID, SourceSHA256: res.SHA256,
		Release:  meta.Release{SHA256: res.SHA256, Kind: meta.KindStatic, SizeBytes: res.Size, URI: v.blobs.URI(dg)},
		Manifest: meta.Manifest{Files: m.Files, TotalBytes: m.TotalBytes, Entrypoint: m.Entrypoint},
		Activate: activate, Actor: "test",
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return ver, res
}

// get sends a request for host and path with headers given as "Key: value".
func (v *env) get(method, host, path string, hdrs ...string) (*http.Response, []byte) {
	v.t.Helper()
	req, err := http.NewRequest(method, v.srv.URL+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	req.Host = host
	for _, h := range hdrs {
		k, val, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(val))
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatalf("%s %s%s: reading body: %v", method, host, path, err)
	}
	return resp, body
}

func (v *env) mustGet(host, path string, wantStatus int, hdrs ...string) (*http.Response, []byte) {
	v.t.Helper()
	resp, body := v.get(http.MethodGet, host, path, hdrs...)
	if resp.StatusCode != wantStatus {
		v.t.Fatalf("GET %s%s: status %d, want %d; body %.200q", host, path, resp.StatusCode, wantStatus, body)
	}
	return resp, body
}

// blobPath is the file holding a release in the fs store.
func (v *env) blobPath(sha string) string {
	return filepath.Join(v.blobDir, "sha256", sha[:2], sha)
}

// corrupt flips bytes of a stored release at off.
func (v *env) corrupt(sha string, off int64, n int) {
	v.t.Helper()
	p := v.blobPath(sha)
	os.Chmod(p, 0o644)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		v.t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0x5a
	}
	if _, err := f.WriteAt(b, off); err != nil {
		v.t.Fatal(err)
	}
}

// text returns n bytes of compressible, non-repeating text.
func text(seed uint64, n int) string {
	words := []string{"cairn ", "release ", "edge ", "static ", "frame ", "zstd ", "serve ", "hash\n"}
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()[:n]
}

// noise returns n incompressible bytes.
func noise(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return string(b)
}
