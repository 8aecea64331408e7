package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// TestProbes: /healthz answers while the process serves; /readyz answers
// 503 once the metadata database is gone, naming the check but not the
// cause.
func TestProbes(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mountHealth(mux, store, blobs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	probe := func(path string) (int, map[string]any, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s: %d %q: %v", path, rec.Code, rec.Body, err)
		}
		return rec.Code, body, rec.Body.String()
	}
	if code, body, _ := probe("/healthz"); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz: %d %v", code, body)
	}
	code, body, _ := probe("/readyz")
	checks, _ := body["checks"].(map[string]any)
	if code != 200 || body["status"] != "ready" || checks["database"] != "ok" || checks["blobs"] != "ok" {
		t.Errorf("/readyz: %d %v", code, body)
	}

	store.Close() // the database is gone
	code, body, raw := probe("/readyz")
	checks, _ = body["checks"].(map[string]any)
	if code != 503 || body["status"] != "unready" || checks["database"] != "unreachable" || checks["blobs"] != "ok" {
		t.Errorf("/readyz with the database closed: %d %v", code, body)
	}
	if strings.Contains(raw, "closed") || strings.Contains(raw, "sql") {
		t.Errorf("/readyz tells the cause: %s", raw)
	}
	if code, _, _ := probe("/healthz"); code != 200 {
		t.Errorf("/healthz with the database closed: %d", code)
	}
}
