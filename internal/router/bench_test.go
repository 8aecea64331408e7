package router

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/httplog"
)

// discardWriter is a reusable ResponseWriter, so that the benchmark counts
// the router's own allocations (and those of the instance's side of the
// loopback exchange, which is in this process too).
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkServeVersion proxies a small GET to a loopback instance, as
// the edge does (httplog gives the request id).
func BenchmarkServeVersion(b *testing.B) {
	e := newEnv(b)
	v := e.version(true)
	body := []byte("hello from a cairn instance\n")
	e.instance(v, hostapi.StateHealthy, startInstance(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	}))
	e.waitPool(v, 1)
	h := httplog.Handler("edge", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.rt.ServeVersion(w, r, e.dep.ID, v.ID, true)
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "app.localhost"
	req.Header.Set("User-Agent", "wrk")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.n, w.code = 0, 0
		h.ServeHTTP(w, req)
		if w.code != 200 || w.n != len(body) {
			b.Fatalf("status %d, %d bytes", w.code, w.n)
		}
	}
}
