package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/metrics/metricstest"
	"github.com/cairnhq/cairn/internal/server"
)

// scrapeMetrics reads GET url into samples by name with labels (checked
// by metricstest.Parse).
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return metricstest.Parse(t, string(b))
}

// TestMetrics: what a publish, edge requests and a collection do shows in
// GET /metrics, on the API listener and on --metrics-addr alike; both serve
// the health probes too.
func TestMetrics(t *testing.T) {
	maddr := freeAddr(t)
	e := start(t, gcNow, func(c *server.Config) { c.MetricsAddr = maddr })
	e.publish("met", site("one"))
	// A rejected publish: not a tar.
	if code, _ := e.do("POST", "/v1/deployments/met/versions", strings.NewReader("not a tar at all"), nil); code != 400 {
		t.Fatalf("bad upload: %d", code)
	}
	resp, body := e.get("met.localhost", "/")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %s", resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	for range 3 {
		e.get("met.localhost", "/")
	}
	if resp, _ := e.get("met.localhost", "/", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := e.get("met.localhost", "/no/such/page"); resp.StatusCode != 404 {
		t.Fatalf("missing page: %d", resp.StatusCode)
	}
	e.runGC(false)

	want := map[string]float64{
		`cairn_http_requests_total{listener="edge",code="2xx"}`: 4,
		`cairn_http_requests_total{listener="edge",code="3xx"}`: 1,
		`cairn_http_requests_total{listener="edge",code="4xx"}`: 1,
		`cairn_publish_total{result="ok"}`:                      1,
		`cairn_publish_total{result="rejected"}`:                1,
		`cairn_gc_runs_total{result="ok"}`:                      1,
		"cairn_publish_waiting":                                 0,
		"cairn_publish_packing":                                 0,
	}
	for _, url := range []string{e.api + "/metrics", "http://" + maddr + "/metrics"} {
		got := scrapeMetrics(t, url)
		for name, v := range want {
			if g, ok := got[name]; !ok || g != v {
				t.Errorf("%s: %s = %v (present: %v), want %v", url, name, g, ok, v)
			}
		}
		for _, name := range []string{
			`cairn_http_requests_total{listener="api",code="2xx"}`,
			`cairn_edge_cache_lookups_total{cache="file",result="hit"}`,
			`cairn_edge_cache_lookups_total{cache="file",result="miss"}`,
			"cairn_edge_cache_bytes", "cairn_edge_cache_files",
			"cairn_publish_bytes_total", "cairn_publish_duration_seconds_count",
			`cairn_http_response_bytes_total{listener="edge"}`, "go_goroutines",
		} {
			if got[name] <= 0 {
				t.Errorf("%s: %s = %v, want > 0", url, name, got[name])
			}
		}
	}
	// The probes, on both listeners, with this pass's real backends.
	for _, base := range []string{e.api, "http://" + maddr} {
		for path, want := range map[string]string{"/healthz": `{"status":"ok"}`,
			"/readyz": `{"checks":{"blobs":"ok","database":"ok"},"status":"ready"}`} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != want {
				t.Errorf("GET %s%s: %d %s, want 200 %s", base, path, resp.StatusCode, b, want)
			}
		}
	}
	// The API's other answers are untouched by the metrics route.
	if code, _ := e.do("GET", "/v1/deployments/met", nil, nil); code != 200 {
		t.Errorf("GET /v1/deployments/met: %d", code)
	}
	var buf bytes.Buffer
	resp2, err := http.Post(e.api+"/metrics", "text/plain", &buf)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp2.StatusCode)
	}
}
