package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func problemServer(t *testing.T, status int, contentType, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, "tok")
}

func TestProblemDecoding(t *testing.T) {
	c := problemServer(t, 404, "application/problem+json",
		`{"type":"https://cairn.dev/problems/not-found","title":"Not Found","status":404,"detail":"deployment \"x\" not found"}`)
	_, err := c.GetDeployment(context.Background(), "x")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if e.Status != 404 || e.Type != "https://cairn.dev/problems/not-found" || e.Title != "Not Found" || e.Detail != `deployment "x" not found` {
		t.Errorf("decoded %+v", e)
	}
	if got, want := err.Error(), `deployment "x" not found (404)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsNotFound(err) || IsConflict(err) || StatusOf(err) != 404 {
		t.Error("status helpers disagree")
	}
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status      int
		ctype, body string
		want        string
	}{
		{500, "application/problem+json", `{"title":"Internal Server Error","status":500,"detail":"internal error; see the server log","instance":"urn:cairn:error:ab12"}`,
			"internal error; see the server log (500) [urn:cairn:error:ab12]"},
		{401, "application/problem+json", `{"title":"Unauthorized","status":401}`, "Unauthorized (401)"},
		{404, "text/plain; charset=utf-8", "404 page not found\n", "404 page not found (404)"},
		{502, "text/html", "<html><body>Bad gateway\n<pre>stack</pre></body></html>", "Bad Gateway (502)"},
		{409, "application/problem+json", "{not json", "Conflict (409)"},
		{400, "application/problem+json", `{"detail":"line one\nline two"}`, "line one line two (400)"},
	} {
		c := problemServer(t, tc.status, tc.ctype, tc.body)
		_, err := c.ListDeployments(context.Background())
		if err == nil || err.Error() != tc.want {
			t.Errorf("%d %s: got %v, want %q", tc.status, tc.ctype, err, tc.want)
		}
		if StatusOf(err) != tc.status {
			t.Errorf("StatusOf = %d, want %d", StatusOf(err), tc.status)
		}
	}
}

func TestPublishTarStreams(t *testing.T) {
	var got struct {
		method, path, query, ctype, auth string
		chunked                          bool
		body                             []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.query = r.Method, r.URL.Path, r.URL.RawQuery
		got.ctype, got.auth = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		got.chunked = len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
		got.body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"id":"ver_1","version_number":3,"status":"active","artifact_manifest":{"files":2}}`)
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "s3cret")
	v, err := c.PublishTar(context.Background(), "demo", bytes.NewReader([]byte("tarbytes")), PublishOptions{Entrypoint: "main.html"})
	if err != nil {
		t.Fatal(err)
	}
	if v.VersionNumber != 3 || v.ArtifactManifest.Files != 2 {
		t.Errorf("version %+v", v)
	}
	if got.method != "POST" || got.path != "/v1/deployments/demo/versions" || got.query != "activate=false&entrypoint=main.html" {
		t.Errorf("request %s %s?%s", got.method, got.path, got.query)
	}
	if got.ctype != "application/x-tar" || got.auth != "Bearer s3cret" || !got.chunked || string(got.body) != "tarbytes" {
		t.Errorf("ctype %q auth %q chunked %v body %q", got.ctype, got.auth, got.chunked, got.body)
	}
}

// A body that fails mid-stream aborts the request with the body's error.
func TestPublishTarBodyError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(201)
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	boom := errors.New("walk failed")
	go func() {
		pw.Write([]byte(strings.Repeat("x", 1000)))
		pw.CloseWithError(boom)
	}()
	_, err := New(srv.URL, "").PublishTar(context.Background(), "demo", pr, PublishOptions{Activate: true})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want the body's error", err)
	}
}

func TestRequestShapes(t *testing.T) {
	type req struct{ method, path, body string }
	var reqs []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs = append(reqs, req{r.Method, r.URL.RequestURI(), string(b)})
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/versions") && r.URL.Query().Get("cursor") == "" {
			io.WriteString(w, `{"versions":[{"version_number":3},{"version_number":2}],"next_cursor":"2"}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/versions") {
			io.WriteString(w, `{"versions":[{"version_number":1}],"next_cursor":""}`)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, ctx := New(srv.URL, "t"), context.Background()
	vs, err := c.AllVersions(ctx, "demo")
	if err != nil || len(vs) != 3 || vs[2].VersionNumber != 1 {
		t.Fatalf("AllVersions = %v, %v", vs, err)
	}
	c.Activate(ctx, "demo", 2)
	c.Rollback(ctx, "demo", 0)
	c.Rollback(ctx, "demo", 1)
	c.CreateDomain(ctx, "www.example.com", "demo", 0)
	c.SetDomainVersion(ctx, "www.example.com", 0)
	c.CreateDeployment(ctx, "demo", "static", 0)
	want := []req{
		{"GET", "/v1/deployments/demo/versions?limit=100", ""},
		{"GET", "/v1/deployments/demo/versions?cursor=2&limit=100", ""},
		{"POST", "/v1/deployments/demo/activate", `{"version_number":2}`},
		{"POST", "/v1/deployments/demo/rollback", `{}`},
		{"POST", "/v1/deployments/demo/rollback", `{"version_number":1}`},
		{"POST", "/v1/domains", `{"deployment":"demo","hostname":"www.example.com"}`},
		{"PATCH", "/v1/domains/www.example.com", `{"version_number":null}`},
		{"POST", "/v1/deployments", `{"kind":"static","name":"demo"}`},
	}
	if len(reqs) != len(want) {
		t.Fatalf("requests %v", reqs)
	}
	for i := range want {
		if reqs[i] != want[i] {
			t.Errorf("request %d = %v, want %v", i, reqs[i], want[i])
		}
	}
}
