package api

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
	"github.com/cairnhq/cairn/internal/release"
)

// newDeriveAPI is an API with the registry and a Deriver that packs with
// the static packer (the test image holds nothing it normalises), and an
// oci deployment "app" whose version 1 is a pushed three-layer image.
func newDeriveAPI(t *testing.T) *API {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Config{Meta: store, Blobs: blobs, Token: testToken,
		StageDir: filepath.Join(dir, "stage"), Host: "registry.test", UploadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	pack := func(ctx context.Context, r io.Reader, w io.Writer, scratch string) (*release.Result, error) {
		return release.PackRootfsTar(ctx, r, w, release.RootfsOptions{ScratchDir: scratch})
	}
	der, err := derive.New(derive.Config{Meta: store, Blobs: blobs, Images: reg, Pack: pack, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{Meta: store, Blobs: blobs, Token: testToken, Images: reg, Derive: der})
	for _, body := range []string{`{"name":"app","kind":"oci"}`, `{"name":"site"}`} {
		if code, out := callAs(a, testToken, "POST", "/v1/deployments", body); code != 201 {
			t.Fatalf("create %s: %d %v", body, code, out)
		}
	}
	var layers []v1.Layer
	for i, files := range [][]string{{"app/", "app/main"}, {"app/lib/", "app/lib/x"}, {"etc/", "etc/conf"}} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			h := &tar.Header{Name: f, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f) + i)}
			if strings.HasSuffix(f, "/") {
				h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
			}
			tw.WriteHeader(h)
			io.WriteString(tw, strings.Repeat("x", int(h.Size)))
		}
		tw.Close()
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{Cmd: []string{"/app/main"}, ExposedPorts: map[string]struct{}{"3000/tcp": {}}}); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "x", Password: testToken})); err != nil {
		t.Fatal(err)
	}
	if code, out := callAs(a, testToken, "POST", "/v1/deployments/app/versions", `{"image":"v1"}`); code != 201 {
		t.Fatalf("version from image: %d %v", code, out)
	}
	return a
}

// TestRootfsRoute: GET …/versions/{n}/rootfs derives and records the
// rootfs, within the token's scopes; the release says what it derives from
// and the erofs route builds the image of it.
func TestRootfsRoute(t *testing.T) {
	a := newDeriveAPI(t)
	_, other := mintToken(t, a, `{"scopes":["deploy:site"]}`)
	_, read := mintToken(t, a, `{"scopes":["read"]}`)
	_, dep := mintToken(t, a, `{"scopes":["deploy:app"]}`)
	if code, out := callAs(a, other, "GET", "/v1/deployments/app/versions/1/rootfs", ""); code != 403 {
		t.Errorf("deploy:site token: %d %v, want 403", code, out)
	}
	if code, out := callAs(a, "", "GET", "/v1/deployments/app/versions/1/rootfs", ""); code != 401 {
		t.Errorf("no token: %d %v, want 401", code, out)
	}
	code, out := callAs(a, dep, "GET", "/v1/deployments/app/versions/1/rootfs", "")
	if code != 200 {
		t.Fatalf("deploy:app token: %d %v", code, out)
	}
	rel := out["release"].(map[string]any)
	sha := rel["sha256"].(string)
	if rel["kind"] != "rootfs" || out["runtime"].(map[string]any)["port"] != float64(3000) {
		t.Errorf("rootfs answer: %v", out)
	}
	if code, again := callAs(a, read, "GET", "/v1/deployments/app/versions/1/rootfs", ""); code != 200 ||
		again["release"].(map[string]any)["sha256"] != sha {
		t.Errorf("read token, again: %d %v", code, again)
	}
	_, rv := callAs(a, read, "GET", "/v1/releases/"+sha, "")
	from, _ := rv["derived_from"].([]any)
	if len(from) != 1 || from[0].(map[string]any)["kind"] != "rootfs" {
		t.Errorf("release of the rootfs: %v, want derived_from the image", rv)
	}
	src := from[0].(map[string]any)["source_sha256"].(string)
	if _, iv := callAs(a, read, "GET", "/v1/releases/"+src, ""); iv["derived"].(map[string]any)["rootfs"] != sha {
		t.Errorf("release of the image: %v, want derived.rootfs %s", iv, sha)
	}

	for _, c := range []struct {
		path string
		code int
		typ  string
	}{
		{"/v1/deployments/app/versions/9/rootfs", 404, "not-found"},
		{"/v1/deployments/app/versions/x/rootfs", 400, "bad-request"},
		{"/v1/deployments/site/versions/1/rootfs", 400, "bad-request"},
		{"/v1/releases/" + src + "/erofs", 400, "bad-request"},
		{"/v1/releases/" + strings.Repeat("0", 64) + "/erofs", 404, "not-found"},
	} {
		if code, out := callAs(a, testToken, "GET", c.path, ""); code != c.code || out["type"] == nil ||
			!strings.HasSuffix(out["type"].(string), c.typ) {
			t.Errorf("GET %s: %d %v, want %d %s", c.path, code, out, c.code, c.typ)
		}
	}

	if _, err := exec.LookPath("mkfs.erofs"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the tests as root, with mkfs.erofs (.ci/run installs erofs-utils)")
		}
		t.Skip("erofs: needs mkfs.erofs and root (to unpack a rootfs)")
	}
	code, ev := callAs(a, dep, "GET", "/v1/releases/"+sha+"/erofs", "")
	if code != 403 {
		t.Errorf("erofs with a deploy:app token: %d %v, want 403 (releases are read by read tokens)", code, ev)
	}
	code, ev = callAs(a, read, "GET", "/v1/releases/"+sha+"/erofs", "")
	if code != 200 || ev["release"].(map[string]any)["kind"] != "erofs" {
		t.Fatalf("erofs: %d %v", code, ev)
	}
	esha := ev["release"].(map[string]any)["sha256"].(string)
	req := httptest.NewRequest("GET", "/v1/releases/"+esha+"/artifact", nil)
	req.Header.Set("Authorization", "Bearer "+read)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/octet-stream" ||
		!strings.HasSuffix(rec.Header().Get("Content-Disposition"), `.erofs"`) {
		t.Errorf("erofs artifact: %d %v", rec.Code, rec.Header())
	}
}
