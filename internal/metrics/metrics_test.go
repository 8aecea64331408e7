package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/metrics/metricstest"
)

// scrape returns the metrics m serves, by name with labels (checked by
// metricstest.Parse), and their text.
func scrape(t *testing.T, m *Metrics) (map[string]float64, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	text := rec.Body.String()
	return metricstest.Parse(t, text), text
}

func TestHTTP(t *testing.T) {
	m := New()
	h := m.HTTP("edge", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("hello"))
		case "/copy": // through ReadFrom, as http.ServeContent does
			io.Copy(w, strings.NewReader("twelve bytes"))
		case "/missing":
			http.NotFound(w, r)
		case "/same":
			w.WriteHeader(http.StatusNotModified)
		case "/boom":
			w.WriteHeader(http.StatusInternalServerError)
		case "/continue":
			w.WriteHeader(http.StatusContinue) // informational: not the status
			w.WriteHeader(http.StatusCreated)
		case "/flush":
			http.NewResponseController(w).Flush()
		case "/abort-early":
			panic(http.ErrAbortHandler)
		case "/abort":
			w.WriteHeader(http.StatusOK)
			panic(http.ErrAbortHandler) // the client gets a cut response
		}
		// "/empty": nothing written, net/http answers 200
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	// No connection is reused, so the client never retries a request
	// whose connection an aborted handler cut.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, p := range []string{"/ok", "/copy", "/missing", "/same", "/boom", "/continue", "/flush", "/empty", "/ok", "/abort-early", "/abort"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			if strings.HasPrefix(p, "/abort") {
				continue // the connection is cut
			}
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	got, text := scrape(t, m)
	for name, want := range map[string]float64{
		`cairn_http_requests_total{listener="edge",code="1xx"}`:      0,
		`cairn_http_requests_total{listener="edge",code="2xx"}`:      6, // /ok ×2, /copy, /continue (201), /flush, /empty
		`cairn_http_requests_total{listener="edge",code="3xx"}`:      1,
		`cairn_http_requests_total{listener="edge",code="4xx"}`:      1,
		`cairn_http_requests_total{listener="edge",code="5xx"}`:      3, // /boom and the two aborted
		`cairn_http_response_bytes_total{listener="edge"}`:           float64(2*len("hello") + len("twelve bytes") + len("404 page not found\n")),
		`cairn_http_request_duration_seconds_count{listener="edge"}`: 11,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	for _, s := range []string{"# TYPE cairn_http_requests_total counter", "go_goroutines", "process_resident_memory_bytes",
		`cairn_http_request_duration_seconds_bucket{listener="edge",le="+Inf"} 11`} {
		if !strings.Contains(text, s) {
			t.Errorf("no %q in the scrape", s)
		}
	}
}

func TestRecordersAndNil(t *testing.T) {
	m := New()
	m.Inc(`cairn_publish_total{result="ok"}`)
	m.Add("cairn_publish_bytes_total", 10)
	m.Add("cairn_publish_bytes_total", -3) // ignored: counters only grow
	m.Since("cairn_publish_duration_seconds", time.Now().Add(-20*time.Millisecond))
	m.Gauge("cairn_publish_waiting", func() float64 { return 2 })
	m.Counters(func() map[string]uint64 { return map[string]uint64{`x_total{a="2"}`: 5, `x_total{a="1"}`: 4} })
	got, text := scrape(t, m)
	for name, want := range map[string]float64{
		`cairn_publish_total{result="ok"}`:                  1,
		"cairn_publish_bytes_total":                         10,
		"cairn_publish_duration_seconds_count":              1,
		`cairn_publish_duration_seconds_bucket{le="0.025"}`: 1,
		`cairn_publish_duration_seconds_bucket{le="0.01"}`:  0,
		"cairn_publish_waiting":                             2,
		`x_total{a="1"}`:                                    4,
		`x_total{a="2"}`:                                    5,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if i, j := strings.Index(text, `x_total{a="1"}`), strings.Index(text, `x_total{a="2"}`); i < 0 || j < i {
		t.Errorf("counters read at a scrape are not in name order:\n%s", text)
	}

	// A nil *Metrics records nothing and its handlers still work.
	var none *Metrics
	none.Inc("a_total")
	none.Add("a_total", 1)
	none.Since("a_seconds", time.Now())
	none.Gauge("a", func() float64 { return 1 })
	none.Counters(func() map[string]uint64 { return nil })
	h := none.HTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 204 {
		t.Errorf("nil metrics changed the answer: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	none.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", rec.Code)
	}
}
