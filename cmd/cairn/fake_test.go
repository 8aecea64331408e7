package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// request is what the fake API saw.
type request struct {
	Method, Path, Query, Auth string
	Body                      []byte
}

// fakeAPI answers like the v1 API for deployment "demo" (three versions,
// listed two per page); every other deployment is missing.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{}
	mux := http.NewServeMux()
	reply := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if status >= 400 {
				w.Header().Set("Content-Type", "application/problem+json")
			} else {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	dep := `{"id":"dep_1","name":"demo","kind":"static","active_version_id":"ver_2","retention_days":30,"created_at":"2024-05-01T12:00:00Z","url":"https://demo.sites.test/"}`
	mux.HandleFunc("GET /v1/deployments/demo", reply(200, dep))
	missing := func(w http.ResponseWriter, r *http.Request) {
		reply(404, `{"type":"https://cairn.dev/problems/not-found","title":"Not Found","status":404,"detail":"deployment \"`+
			r.PathValue("dep")+`\" not found"}`)(w, r)
	}
	mux.HandleFunc("GET /v1/deployments/{dep}", missing)
	mux.HandleFunc("GET /v1/deployments/{dep}/versions", missing)
	mux.HandleFunc("POST /v1/deployments", reply(201, strings.Replace(dep, `"demo"`, `"fresh"`, 1)))
	mux.HandleFunc("GET /v1/deployments/demo/versions", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			reply(200, `{"versions":[`+version(3, "ready")+`,`+version(2, "active")+`],"next_cursor":"2"}`)(w, r)
			return
		}
		reply(200, `{"versions":[`+version(1, "archived")+`],"next_cursor":""}`)(w, r)
	})
	mux.HandleFunc("POST /v1/deployments/{dep}/versions", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			reply(401, `{"type":"https://cairn.dev/problems/unauthorized","title":"Unauthorized","status":401,"detail":"Unauthorized"}`)(w, r)
			return
		}
		// URLs come from the server: a base domain the CLI cannot guess.
		dep := r.PathValue("dep")
		reply(201, strings.Replace(version(4, "active"), `"created_at"`,
			`"url":"https://`+dep+`.sites.test/","preview_url":"https://`+dep+`--v4.sites.test/","created_at"`, 1))(w, r)
	})
	mux.HandleFunc("GET /v1/versions/ver_1", reply(200, version(1, "active")))
	mux.HandleFunc("POST /v1/deployments/demo/activate", reply(200, dep))
	mux.HandleFunc("POST /v1/deployments/demo/rollback", reply(200, strings.Replace(dep, "ver_2", "ver_1", 1)))
	mux.HandleFunc("GET /v1/domains", reply(200, `{"domains":[{"hostname":"www.example.com","deployment_id":"dep_1","version_id":null,`+
		`"created_at":"2024-05-01T12:00:00Z","updated_at":"2024-05-01T12:00:00Z"}]}`))
	mux.HandleFunc("POST /v1/domains", reply(201, `{"hostname":"www.example.com","deployment_id":"dep_1","version_id":null}`))
	fakeBuilds(mux)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func version(n int, status string) string {
	return strings.NewReplacer("N", string(rune('0'+n)), "STATUS", status).Replace(
		`{"id":"ver_N","deployment_id":"dep_1","version_number":N,"status":"STATUS",` +
			`"artifact_sha256":"ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",` +
			`"artifact_manifest":{"files":42,"total_bytes":1200000,"entrypoint":"index.html"},"created_at":"2024-05-01T12:00:00Z"}`)
}

// requests returns what the fake saw so far.
func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// cli runs one command line with env as the whole environment.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb, func(k string) string { return env[k] })
	code = a.run(context.Background(), args)
	return out.String(), errb.String(), code
}
