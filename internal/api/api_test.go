package api

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/httprange"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

const testToken = "secret-token-of-at-least-32-characters"

func newAPI(t testing.TB) *API {
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
	pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(),
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	return New(Config{Meta: store, Blobs: blobs, Publisher: pub, Token: testToken})
}

func call(a *API, method, path, body string, auth bool) (*http.Response, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Result(), out
}

func TestBadRequests(t *testing.T) {
	a := newAPI(t)
	if r, _ := call(a, "POST", "/v1/deployments", `{"name":"demo"}`, true); r.StatusCode != 201 {
		t.Fatalf("create: %d", r.StatusCode)
	}
	cases := []struct {
		method, path, body string
		auth               bool
		status             int
		typ                string
	}{
		{"POST", "/v1/deployments", `{"name":"demo"}`, true, 409, "conflict"},
		{"POST", "/v1/deployments", `{"name":"Bad_Name"}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":"a--v2"}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":"x","kind":"vm"}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":"x","retention_days":-1}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":"x","bogus":1}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":`, true, 400, "bad-request"},
		{"POST", "/v1/deployments", ``, true, 400, "bad-request"},
		{"POST", "/v1/deployments", `{"name":"x"}`, false, 401, "unauthorized"},
		{"PATCH", "/v1/deployments/demo", `{"retention_days":7}`, false, 401, "unauthorized"},
		{"GET", "/v1/deployments", ``, false, 401, "unauthorized"},
		{"GET", "/v1/deployments/demo", ``, false, 401, "unauthorized"},
		{"GET", "/v1/events", ``, false, 401, "unauthorized"},
		{"GET", "/v1/nothing", ``, false, 401, "unauthorized"},
		{"GET", "/v1/deployments/nope", ``, true, 404, "not-found"},
		{"GET", "/v1/deployments/demo/versions/0", ``, true, 400, "bad-request"},
		{"GET", "/v1/deployments/demo/versions/3", ``, true, 404, "not-found"},
		{"GET", "/v1/deployments/demo/versions?limit=1000", ``, true, 400, "bad-request"},
		{"POST", "/v1/deployments/demo/activate", `{}`, true, 400, "bad-request"},
		{"POST", "/v1/deployments/demo/rollback", ``, true, 409, "no-previous-version"},
		{"GET", "/v1/releases/xyz", ``, true, 400, "bad-request"},
		{"GET", "/v1/releases/" + strings.Repeat("a", 64), ``, true, 404, "not-found"},
		{"POST", "/v1/domains", `{"hostname":"no","deployment":"demo"}`, true, 400, "bad-request"},
		{"POST", "/v1/domains", `{"hostname":"a.example.com","deployment":"nope"}`, true, 404, "not-found"},
		{"GET", "/v1/events?since=yesterday", ``, true, 400, "bad-request"},
		{"GET", "/v1/nothing", ``, true, 404, "not-found"},
		{"GET", "/elsewhere", ``, false, 404, "not-found"},
		{"PUT", "/v1/deployments/demo", ``, true, 405, "method-not-allowed"},
		{"PUT", "/v1/deployments", ``, true, 405, "method-not-allowed"},
		{"GET", "/v1/gc", ``, true, 405, "method-not-allowed"},
		{"PUT", "/v1/gc", ``, false, 401, "unauthorized"},
		{"POST", "/v1/deployments/fresh/versions", `x`, true, 404, "not-found"},
		{"POST", "/v1/deployments/fresh/versions?create=maybe", `x`, true, 400, "bad-request"},
		{"POST", "/v1/deployments/Bad_Name/versions?create=true", `x`, true, 400, "bad-request"},
		{"POST", "/v1/deployments/fresh/versions?create=true", `not a tar`, true, 400, "invalid-upload"},
		{"GET", "/v1/deployments/fresh", ``, true, 404, "not-found"}, // the failed create left nothing
		{"GET", "/v1/domains/bad_host.example.com", ``, true, 400, "bad-request"},
		{"PATCH", "/v1/deployments/demo", `{"activate_on_push":"prod"}`, true, 400, "bad-request"},
	}
	for _, c := range cases {
		r, body := call(a, c.method, c.path, c.body, c.auth)
		if r.StatusCode != c.status || r.Header.Get("Content-Type") != "application/problem+json" ||
			body["type"] != "https://cairn.dev/problems/"+c.typ || body["detail"] == "" {
			t.Errorf("%s %s %q: %d %v", c.method, c.path, c.body, r.StatusCode, body)
		}
	}
	for path, want := range map[string]string{
		"/v1/deployments/demo": "GET, HEAD, PATCH, DELETE",
		"/v1/deployments":      "GET, HEAD, POST",
		"/v1/gc":               "POST",
		"/v1/releases/" + strings.Repeat("a", 64) + "/artifact": "GET, HEAD",
	} {
		if r, _ := call(a, "PUT", path, ``, true); r.StatusCode != 405 || r.Header.Get("Allow") != want {
			t.Errorf("PUT %s: %d, Allow %q; want 405, Allow %q", path, r.StatusCode, r.Header.Get("Allow"), want)
		}
	}
	if r, _ := call(a, "POST", "/v1/deployments", `{"name":"x"}`, false); r.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if r, body := call(a, "PATCH", "/v1/deployments/demo", `{"retention_days":7}`, true); r.StatusCode != 200 || body["retention_days"] != 7.0 {
		t.Errorf("patch: %d %v", r.StatusCode, body)
	}
}

// FuzzAPIBodies sends arbitrary bodies to every JSON endpoint: the answer
// is never a 5xx, and a 4xx is always problem+json.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{`{"name":"demo"}`, `{"version_number":1}`, `{"hostname":"a.b.c","deployment":"demo"}`, `{"retention_days":3}`, `[]`, `null`} {
		f.Add(s)
	}
	a := newAPI(f)
	call(a, "POST", "/v1/deployments", `{"name":"demo"}`, true)
	paths := [][2]string{{"POST", "/v1/deployments"}, {"PATCH", "/v1/deployments/demo"},
		{"POST", "/v1/deployments/demo/activate"}, {"POST", "/v1/deployments/demo/rollback"},
		{"POST", "/v1/domains"}, {"PATCH", "/v1/domains/a.b.c"}, {"POST", "/v1/deployments/demo/versions"}}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			r, _ := call(a, p[0], p[1], body, true)
			if r.StatusCode >= 500 {
				b, _ := io.ReadAll(r.Body)
				t.Fatalf("%s %s %q: %d %s", p[0], p[1], body, r.StatusCode, b)
			}
			if r.StatusCode >= 400 && r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s: %d without problem+json", p[0], p[1], r.StatusCode)
			}
		}
	})
}

// TestArtifactRanges: Range on a release's artifact goes through
// httprange: "bytes=-0" is a 416 (it was a 206 with an inverted
// Content-Range), too many ranges get the whole artifact.
func TestArtifactRanges(t *testing.T) {
	a := newAPI(t)
	call(a, "POST", "/v1/deployments", `{"name":"demo"}`, true)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	r, v := call(a, "POST", "/v1/deployments/demo/versions", buf.String(), true)
	if r.StatusCode != 201 {
		t.Fatalf("publish: %d %v", r.StatusCode, v)
	}
	path := "/v1/releases/" + v["artifact_sha256"].(string) + "/artifact"
	get := func(rng string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		return rec
	}
	whole := get("")
	size := whole.Body.Len()
	for rng, want := range map[string]int{"bytes=-0": 416, "bytes=0-0": 206, "bytes=-1": 206,
		"bytes=" + strings.Repeat("0-0,", httprange.MaxRanges) + "1-1": 200} {
		rec := get(rng)
		if rec.Code != want {
			t.Errorf("Range %.30s: %d; want %d", rng, rec.Code, want)
		}
		if cr := rec.Header().Get("Content-Range"); want == 416 && cr != fmt.Sprintf("bytes */%d", size) {
			t.Errorf("Range %s: Content-Range %q", rng, cr)
		}
	}
}
