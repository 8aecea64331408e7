package registry_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/registry"
	"github.com/opencontainers/go-digest"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
)

// imageManifest is an OCI image manifest of a config and layers.
func imageManifest(config digest.Digest, configSize int, layers ...[]byte) []byte {
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`,
			digest.FromBytes(l), len(l)))
	}
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[%s]}`,
		ociManifest, ociConfig, config, configSize, strings.Join(ls, ","))
}

// wantNothingStored checks that the blob store holds n blobs and that the
// tag does not resolve.
func wantNothingStored(t *testing.T, e *env, what string, n int, repo, tag string) {
	t.Helper()
	if got := e.blobCount(t); got != n {
		t.Errorf("%s: %d blobs stored, want %d", what, got, n)
	}
	if resp, _ := e.do(t, "HEAD", "/v2/"+repo+"/manifests/"+tag, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s: tag %s answers %d, want 404", what, tag, resp.StatusCode)
	}
}

func TestManifestRejections(t *testing.T) {
	e := newEnv(t, func(c *registry.Config) { c.MaxManifestBytes = 2048 })
	e.createOCI(t, "app")
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := []byte("layer bytes")
	cd := e.pushBlob(t, "app/web", config)
	e.pushBlob(t, "app/web", layer)
	good := imageManifest(cd, len(config), layer)
	stored := e.blobCount(t)

	unknownLayer := imageManifest(cd, len(config), layer, []byte("never pushed"))
	for _, tc := range []struct {
		name, contentType, ref string
		body                   []byte
		status                 int
		code                   string
	}{
		{"not JSON", ociManifest, "t", []byte("not json"), 400, "MANIFEST_INVALID"},
		{"JSON array", ociManifest, "t", []byte("[1,2]"), 400, "MANIFEST_INVALID"},
		{"schema version 1", ociManifest, "t", bytes.Replace(good, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":1`), 1), 400, "MANIFEST_INVALID"},
		{"no config", ociManifest, "t", fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"layers":[]}`, ociManifest), 400, "MANIFEST_INVALID"},
		{"malformed layer digest", ociManifest, "t", bytes.Replace(good, []byte(`"digest":"sha256:`), []byte(`"digest":"sha256:zz`), 1), 400, "MANIFEST_INVALID"},
		{"unknown manifest media type", "application/vnd.example.thing+json", "t",
			bytes.Replace(good, []byte(ociManifest), []byte("application/vnd.example.thing+json"), 1), 400, "MANIFEST_INVALID"},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", "t",
			[]byte(`{"schemaVersion":1,"name":"app/web","tag":"t","fsLayers":[]}`), 400, "MANIFEST_INVALID"},
		{"Content-Type disagrees", ociIndex, "t", good, 400, "MANIFEST_INVALID"},
		{"index with a config", ociIndex, "t", fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[],"config":{}}`, ociIndex), 400, "MANIFEST_INVALID"},
		{"unknown layer", ociManifest, "t", unknownLayer, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"wrong config size", ociManifest, "t", imageManifest(cd, len(config)+1, layer), 400, "MANIFEST_INVALID"},
		{"digest mismatch", ociManifest, digest.FromString("other").String(), good, 400, "DIGEST_INVALID"},
		{"malformed digest", ociManifest, "sha256:baddigeststring", good, 400, "DIGEST_INVALID"},
		{"too large", ociManifest, "t", append(good, bytes.Repeat([]byte(" "), 2048)...), 413, "MANIFEST_INVALID"},
		{"invalid tag", ociManifest, "-t", good, 400, "MANIFEST_INVALID"},
	} {
		resp, body := e.do(t, "PUT", "/v2/app/web/manifests/"+tc.ref, tc.body, "Content-Type", tc.contentType)
		wantCode(t, tc.name, resp, body, tc.status, tc.code)
		wantNothingStored(t, e, tc.name, stored, "app/web", "t")
	}

	// An artifact with unknown config and layer media types is fine.
	art := bytes.ReplaceAll(good, []byte("application/vnd.oci.image.layer.v1.tar"), []byte("application/vnd.example.data"))
	art = bytes.Replace(art, []byte(ociConfig), []byte("application/vnd.example.config+json"), 1)
	resp, body := e.do(t, "PUT", "/v2/app/web/manifests/art", art, "Content-Type", ociManifest)
	wantCode(t, "artifact", resp, body, 201, "")
	resp, body = e.do(t, "PUT", "/v2/app/web/manifests/t", good, "Content-Type", ociManifest)
	wantCode(t, "the good manifest", resp, body, 201, "")
	if resp.Header.Get("Docker-Content-Digest") != digest.FromBytes(good).String() {
		t.Errorf("Docker-Content-Digest %q", resp.Header.Get("Docker-Content-Digest"))
	}
}

func TestBlobRejections(t *testing.T) {
	e := newEnv(t, func(c *registry.Config) { c.MaxBlobBytes = 1000 })
	big := bytes.Repeat([]byte("x"), 1500)
	small := []byte("small blob")

	resp, body := e.do(t, "POST", "/v2/app/blobs/uploads/?digest="+digest.FromBytes(big).String(), big)
	wantCode(t, "monolithic POST over the limit", resp, body, 413, "SIZE_INVALID")
	resp, body = e.do(t, "POST", "/v2/app/blobs/uploads/?digest="+digest.FromString("else").String(), small)
	wantCode(t, "monolithic POST, wrong digest", resp, body, 400, "DIGEST_INVALID")
	resp, body = e.do(t, "POST", "/v2/app/blobs/uploads/?digest=sha256:nothex", small)
	wantCode(t, "monolithic POST, malformed digest", resp, body, 400, "DIGEST_INVALID")

	loc := e.startUpload(t, "app")
	resp, body = e.do(t, "PATCH", loc, big[:600], "Content-Range", "0-599")
	wantCode(t, "first chunk", resp, body, 202, "")
	resp, body = e.do(t, "PATCH", loc, big[600:], "Content-Range", "600-1499")
	wantCode(t, "chunk over the limit", resp, body, 413, "SIZE_INVALID")
	resp, body = e.do(t, "PATCH", loc, big[700:800], "Content-Range", "700-799")
	wantCode(t, "chunk out of order", resp, body, 416, "BLOB_UPLOAD_INVALID")
	if got := resp.Header.Get("Range"); got != "0-599" {
		t.Errorf("Range after rejected chunks %q, want 0-599", got)
	}
	resp, body = e.do(t, "PATCH", loc, big[600:700], "Content-Range", "bogus")
	wantCode(t, "malformed Content-Range", resp, body, 400, "BLOB_UPLOAD_INVALID")
	resp, body = e.do(t, "PUT", loc+"?digest="+digest.FromBytes(big[:600]).String(), big[600:], "Content-Range", "")
	wantCode(t, "last chunk over the limit", resp, body, 413, "SIZE_INVALID")
	resp, body = e.do(t, "PUT", loc+"?digest="+digest.FromString("else").String(), nil)
	wantCode(t, "wrong digest", resp, body, 400, "DIGEST_INVALID")
	resp, _ = e.do(t, "GET", loc, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-599" {
		t.Errorf("status after a wrong digest: %d, Range %q", resp.StatusCode, resp.Header.Get("Range"))
	}

	// A streamed PATCH of unknown length over the limit.
	loc2 := e.startUpload(t, "app")
	req, _ := http.NewRequestWithContext(t.Context(), "PATCH", e.srv.URL+loc2, struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+testToken)
	r2, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 413 {
		t.Errorf("streamed PATCH over the limit: %d, want 413", r2.StatusCode)
	}
	// The one blob is the accepted chunk, a part of the open session: not
	// pullable, and an orphan for the GC once the session ends.
	if n := e.blobCount(t); n != 1 {
		t.Errorf("%d blobs stored after rejections, want 1 (the session's part)", n)
	}
	for _, d := range []digest.Digest{digest.FromBytes(big), digest.FromBytes(big[:600])} {
		resp, _ := e.do(t, "HEAD", "/v2/app/blobs/"+d.String(), nil)
		wantCode(t, "rejected blob", resp, nil, 404, "")
	}

	// The session still takes the right bytes.
	resp, body = e.do(t, "PUT", loc+"?digest="+digest.FromBytes(big[:900]).String(), big[600:900], "Content-Range", "600-899")
	wantCode(t, "finishing", resp, body, 201, "")
	resp, body = e.do(t, "GET", "/v2/app/blobs/"+digest.FromBytes(big[:900]).String(), nil, "Range", "bytes=10-19")
	if resp.StatusCode != 206 || string(body) != string(big[10:20]) || resp.Header.Get("Content-Range") != "bytes 10-19/900" {
		t.Errorf("range read: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, _ = e.do(t, "GET", "/v2/app/blobs/"+digest.FromBytes(big[:900]).String(), nil, "Range", "bytes=900-")
	wantCode(t, "range past the end", resp, nil, 416, "")
}

// startUpload opens an upload session and returns its Location.
func (e *env) startUpload(t testing.TB, repo string) string {
	t.Helper()
	resp, body := e.do(t, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		t.Fatalf("starting an upload: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func TestNames(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v2/App/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a//b/tags/list", 400, "NAME_INVALID"},
		{"POST", "/v2/under_score/blobs/uploads/", 400, "NAME_INVALID"}, // not a DNS label
		{"POST", "/v2/a--b/blobs/uploads/", 400, "NAME_INVALID"},
		{"GET", "/v2/nothing/tags/list", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/app/blobs/sha256:abc", 400, "DIGEST_INVALID"},
		{"GET", "/v2/app/elsewhere", 404, "UNSUPPORTED"},
		{"POST", "/v2/app/manifests/latest", 405, "UNSUPPORTED"},
		{"GET", "/v2/app/blobs/uploads/0123456789abcdef0123456789abcdef", 404, "BLOB_UPLOAD_UNKNOWN"},
	} {
		resp, body := e.do(t, tc.method, tc.path, nil)
		wantCode(t, tc.method+" "+tc.path, resp, body, tc.status, tc.code)
	}
	for path, want := range map[string]string{
		"/v2/app/manifests/latest": "GET, HEAD, PUT, DELETE",
		"/v2/app/blobs/uploads/":   "POST",
		"/v2/app/tags/list":        "GET",
	} {
		if resp, _ := e.do(t, "PATCH", path, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != want {
			t.Errorf("PATCH %s: %d, Allow %q; want 405, Allow %q", path, resp.StatusCode, resp.Header.Get("Allow"), want)
		}
	}
	if _, err := e.meta.GetDeployment(t.Context(), "under_score"); err == nil {
		t.Error("a push with an invalid deployment name created a deployment")
	}
}

// TestIndexChildren: an index is stored only when every manifest it lists
// is in the repository with the size it claims (as CNCF distribution does
// by default); nothing is stored otherwise.
func TestIndexChildren(t *testing.T) {
	e := newEnv(t, nil)
	config := []byte(`{"architecture":"arm64","os":"linux"}`)
	cd := e.pushBlob(t, "app", config)
	child := imageManifest(cd, len(config))
	index := func(d digest.Digest, size int) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"arm64"}}]}`,
			ociIndex, ociManifest, d, size)
	}
	stored := e.blobCount(t)
	resp, body := e.do(t, "PUT", "/v2/app/manifests/multi", index(digest.FromBytes(child), len(child)), "Content-Type", ociIndex)
	wantCode(t, "index before its child", resp, body, 400, "MANIFEST_BLOB_UNKNOWN")
	wantNothingStored(t, e, "index before its child", stored, "app", "multi")

	resp, body = e.do(t, "PUT", "/v2/app/manifests/"+digest.FromBytes(child).String(), child, "Content-Type", ociManifest)
	wantCode(t, "the child", resp, body, 201, "")
	stored = e.blobCount(t)
	resp, body = e.do(t, "PUT", "/v2/app/manifests/multi", index(digest.FromBytes(child), len(child)+1), "Content-Type", ociIndex)
	wantCode(t, "index with a wrong child size", resp, body, 400, "MANIFEST_INVALID")
	wantNothingStored(t, e, "index with a wrong child size", stored, "app", "multi")
	resp, body = e.do(t, "PUT", "/v2/other/manifests/multi", index(digest.FromBytes(child), len(child)), "Content-Type", ociIndex)
	wantCode(t, "index whose child is in another repository", resp, body, 400, "MANIFEST_BLOB_UNKNOWN")

	resp, body = e.do(t, "PUT", "/v2/app/manifests/multi", index(digest.FromBytes(child), len(child)), "Content-Type", ociIndex)
	wantCode(t, "index after its child", resp, body, 201, "")
	empty := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[]}`, ociIndex)
	resp, body = e.do(t, "PUT", "/v2/app/manifests/empty", empty, "Content-Type", ociIndex)
	wantCode(t, "empty index", resp, body, 201, "")
}
