package httplog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/problem"
)

func TestRequestID(t *testing.T) {
	var seen string
	h := httplog.Handler("api", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httplog.RequestID(r.Context())
	}))
	for _, c := range []struct{ sent, keep string }{
		{"", ""},
		{"client-id_1.2", "client-id_1.2"},
		{"bad id with spaces", ""},
		{strings.Repeat("a", 65), ""},
		{"inject\nline", ""},
	} {
		req := httptest.NewRequest("GET", "/x", nil)
		if c.sent != "" {
			req.Header.Set(httplog.Header, c.sent)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(httplog.Header)
		if got != seen || got == "" {
			t.Errorf("sent %q: header %q, context %q", c.sent, got, seen)
		}
		if c.keep != "" && got != c.keep {
			t.Errorf("sent %q: id %q, want it kept", c.sent, got)
		}
		if c.keep == "" && (got == c.sent || len(got) != 16) {
			t.Errorf("sent %q: id %q, want a new 16-digit id", c.sent, got)
		}
	}
}

// TestAccessLine: one JSON line per request with every field, the status
// and bytes the client got, and the duration in milliseconds.
func TestAccessLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	h := httplog.Handler("edge", log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("short and stout"))
	}))
	req := httptest.NewRequest("GET", "http://site.localhost/a/b?q=1", nil)
	req.Header.Set(httplog.Header, "req-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	want := map[string]any{"msg": "http", "listener": "edge", "method": "GET", "host": "site.localhost",
		"path": "/a/b", "status": 418.0, "bytes": 15.0, "request_id": "req-1"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v", line["duration_ms"])
	}
	if _, ok := line["remote"]; !ok {
		t.Error("no remote")
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want 1", n)
	}
}

// TestProblemCarriesRequestID: every problem document, not only a 5xx,
// names the request in instance and request_id.
func TestProblemCarriesRequestID(t *testing.T) {
	h := httplog.Handler("api", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, nil, problem.New(http.StatusNotFound, "not-found", "no such thing"))
	}))
	req := httptest.NewRequest("GET", "/v1/x", nil)
	req.Header.Set(httplog.Header, "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	if body["instance"] != "urn:cairn:request:abc-123" || body["request_id"] != "abc-123" {
		t.Errorf("body %v", body)
	}
}
