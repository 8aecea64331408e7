package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

// gcNow configures immediate collection: no grace, no drain, no periodic
// runs (the test runs them through POST /v1/gc).
func gcNow(cfg *server.Config) {
	cfg.GCGrace, cfg.GCDrain, cfg.GCInterval = 0, 0, 0
}

// runGC runs POST /v1/gc and returns the report. Every metadata backend
// (SQLite, PostgreSQL) collects.
func (e *env) runGC(dry bool) map[string]any {
	e.t.Helper()
	var rep map[string]any
	code, _ := e.do("POST", "/v1/gc", e.jsonBody(map[string]any{"dry_run": dry}), &rep)
	if code != 200 {
		e.t.Fatalf("POST /v1/gc: %d %v", code, rep)
	}
	return rep
}

// TestGCFlow: v1 and v2 published (v2 active), retention 0 and grace 0: a
// collection takes v1; every way back to it answers 410 with the collected
// version's facts; its row keeps its hashes; the audit still names it.
func TestGCFlow(t *testing.T) {
	e := start(t, gcNow)
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "flow", "retention_days": 0}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	v1 := e.publish("flow", site("one"))
	if code, _ := e.do("POST", "/v1/domains", e.jsonBody(map[string]any{"hostname": "www.flow.test", "deployment": "flow"}), nil); code != 201 {
		t.Fatalf("domain: %d", code)
	}
	time.Sleep(10 * time.Millisecond)
	whenV1 := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	v2 := e.publish("flow", site("two"))
	sha1 := v1["artifact_sha256"].(string)

	if r, b := e.get("flow--v1.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>one</h1>" {
		t.Fatalf("preview of v1 before collection: %d %q", r.StatusCode, b) // and its route is cached
	}
	if resp, err := http.Post(e.api+"/v1/gc", "application/json", strings.NewReader(`{"dry_run":true}`)); err != nil || resp.StatusCode != 401 {
		t.Fatalf("POST /v1/gc without the token: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	if dry := e.runGC(true); len(dry["collected"].([]any)) != 1 {
		t.Fatalf("dry run: %v", dry["collected"])
	}
	rep := e.runGC(false)
	collected := rep["collected"].([]any)
	if len(collected) != 1 || collected[0].(map[string]any)["sha256"] != sha1 {
		t.Fatalf("collected %v, want v1's release", collected)
	}
	if tot := rep["totals"].(map[string]any); tot["versions_collected"] != 1.0 || tot["bytes_freed"].(float64) <= 0 {
		t.Errorf("totals %v", tot)
	}

	want410 := func(what string, code int, body map[string]any) {
		t.Helper()
		if code != http.StatusGone || body["type"] != "https://cairn.dev/problems/version-collected" ||
			body["version_number"] != 1.0 || body["artifact_sha256"] != sha1 || body["collected_at"] == nil {
			t.Errorf("%s: %d %v, want 410 version-collected with version_number, artifact_sha256, collected_at", what, code, body)
		}
	}
	var body map[string]any
	code, _ := e.do("POST", "/v1/deployments/flow/activate", e.jsonBody(map[string]any{"version_number": 1}), &body)
	want410("activate v1", code, body)
	body = nil
	code, _ = e.do("POST", "/v1/deployments/flow/rollback", nil, &body)
	want410("rollback", code, body)
	body = nil
	code, _ = e.do("PATCH", "/v1/domains/www.flow.test", e.jsonBody(map[string]any{"version_number": 1}), &body)
	want410("pin a domain to v1", code, body)

	req, _ := http.NewRequest("GET", e.api+"/v1/releases/"+sha1+"/artifact", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("artifact of v1: %d, want 410", resp.StatusCode)
	}
	if r, b := e.get("flow--v1.localhost", "/"); r.StatusCode != http.StatusGone || !strings.Contains(string(b), "410") {
		t.Errorf("preview of v1: %d %q, want the 410 page", r.StatusCode, b)
	}
	if r, b := e.get("flow.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>two</h1>" {
		t.Errorf("active v2: %d %q", r.StatusCode, b)
	}

	var row map[string]any
	e.do("GET", "/v1/deployments/flow/versions/1", nil, &row)
	if row["status"] != "collected" || row["collected_at"] == nil || row["artifact_sha256"] != sha1 ||
		row["source_sha256"] != v1["source_sha256"] {
		t.Errorf("v1 row after collection: %v", row)
	}

	history := func(path string, at time.Time) map[string]any {
		t.Helper()
		var h map[string]any
		if code, _ := e.do("GET", path+"?at="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil, &h); code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, h)
		}
		return h
	}
	for _, path := range []string{"/v1/domains/www.flow.test/history", "/v1/deployments/flow/history"} {
		h := history(path, whenV1)
		ver, rel := h["version"].(map[string]any), h["release"].(map[string]any)
		if ver["id"] != v1["id"] || rel["sha256"] != sha1 || rel["collected_at"] == nil {
			t.Errorf("%s at v1's time: version %v, release %v; want v1 and its collected release", path, ver["id"], rel)
		}
		if h := history(path, time.Now()); h["version"].(map[string]any)["id"] != v2["id"] {
			t.Errorf("%s now: %v, want v2", path, h["version"])
		}
	}
	if code, _ := e.do("GET", "/v1/domains/www.flow.test/history?at=2000-01-01T00:00:00Z", nil, nil); code != 404 {
		t.Errorf("history before the domain existed: %d, want 404", code)
	}
}

// TestKeepVersionsAPI: keep_versions is set at create and by PATCH, shown
// in the Deployment JSON, and honoured by a collection.
func TestKeepVersionsAPI(t *testing.T) {
	e := start(t, gcNow)
	var d map[string]any
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "kv", "retention_days": 0, "keep_versions": 2}), &d)
	if d["keep_versions"] != 2.0 || d["retention_days"] != 0.0 {
		t.Fatalf("created %v", d)
	}
	for _, tag := range []string{"a", "b", "c", "d"} {
		e.publish("kv", site(tag))
	}
	if rep := e.runGC(false); len(rep["collected"].([]any)) != 1 {
		t.Errorf("keep 2 of 3 archived: collected %v, want v1 only", rep["collected"])
	}
	e.do("PATCH", "/v1/deployments/kv", e.jsonBody(map[string]any{"keep_versions": 0}), &d)
	if d["keep_versions"] != 0.0 || d["retention_days"] != 0.0 {
		t.Fatalf("patched %v", d)
	}
	if rep := e.runGC(false); len(rep["collected"].([]any)) != 2 {
		t.Errorf("keep 0: collected %v, want v2 and v3", rep["collected"])
	}
	var dflt map[string]any
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "dflt"}), &dflt)
	if dflt["retention_days"] != 30.0 || dflt["keep_versions"] != 0.0 {
		t.Errorf("defaults %v, want retention 30 (the --retention-days default), keep 0", dflt)
	}
}
