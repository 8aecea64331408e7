package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
	"github.com/opencontainers/go-digest"
)

const testToken = "s3cret-token-of-at-least-32-chars"

// env is a registry on a metadata store (SQLite unless a test says
// otherwise) and a filesystem blob store.
type env struct {
	reg   *registry.Registry
	meta  meta.Full
	blobs *fs.Store
	srv   *httptest.Server
	dir   string
}

// newEnvFunc starts a registry on some metadata store; edit may change the
// config first. Tests that run on every backend take one.
type newEnvFunc func(t testing.TB, edit func(*registry.Config)) *env

// newEnv starts a registry on a SQLite store; edit may change the config first.
func newEnv(t testing.TB, edit func(*registry.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return newEnvOn(t, dir, m, edit)
}

// newEnvOn starts a registry on m, with its blobs and upload sessions in dir.
func newEnvOn(t testing.TB, dir string, m meta.Full, edit func(*registry.Config)) *env {
	t.Helper()
	b, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := registry.Config{
		Meta: m, Blobs: b, Token: testToken, StageDir: filepath.Join(dir, "stage"),
		Host: "registry.test", UploadTTL: time.Hour,
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := registry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{reg: r, meta: m, blobs: b, srv: srv, dir: dir}
}

// host is the registry's host:port.
func (e *env) host() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// do sends a request with the token (unless a header sets Authorization)
// and returns the response with its body read.
func (e *env) do(t testing.TB, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantCode checks the status and the first OCI error code of a response.
func wantCode(t testing.TB, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d (body %.300s)", what, resp.StatusCode, status, body)
		return
	}
	if code == "" {
		return
	}
	var eb struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != code {
		t.Errorf("%s: body %.300s, want code %s", what, body, code)
	}
}

// blobCount is the number of blobs in the store.
func (e *env) blobCount(t testing.TB) int {
	t.Helper()
	n := 0
	if err := e.blobs.List(t.Context(), func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// pushBlob uploads b monolithically to repo.
func (e *env) pushBlob(t testing.TB, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	resp, body := e.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing a blob: %d %s", resp.StatusCode, body)
	}
	return d
}

// createOCI creates the oci deployment name, which nested repositories
// (name/…) need before a push.
func (e *env) createOCI(t testing.TB, name string) *meta.Deployment {
	t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindOCI}
	if err := e.meta.CreateDeployment(t.Context(), d, "test"); err != nil {
		t.Fatal(err)
	}
	return d
}
