package edge

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a reusable ResponseWriter, so that benchmarks count
// the handler's own allocations.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkWarm serves cached files: no metadata or storage call.
func BenchmarkWarm(b *testing.B) {
	v := newEnv(b, Config{})
	v.publish(v.deploy("site"), map[string]string{
		"style.css": text(1, 2<<10), "big.bin": text(2, 5<<20),
	}, true)
	for _, c := range []struct {
		name, path, ae string
	}{
		{"small", "/style.css", ""},
		{"5MB", "/big.bin", ""},
		{"passthrough", "/big.bin", "gzip, zstd"},
		{"gzip", "/style.css", "gzip, deflate, br"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, c.path, nil)
			req.Host = "site.localhost"
			if c.ae != "" {
				req.Header.Set("Accept-Encoding", c.ae)
			}
			w := &discardWriter{h: http.Header{}}
			v.edge.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
			b.SetBytes(int64(w.n))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				v.edge.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkStreamed serves a file above MaxCachedFile: ranged reads,
// per-frame decoding and checks on every request.
func BenchmarkStreamed(b *testing.B) {
	v := newEnv(b, Config{MaxCachedFile: 1 << 20})
	v.publish(v.deploy("site"), map[string]string{"big.bin": text(3, 12<<20)}, true)
	for _, ae := range []string{"", "zstd"} {
		b.Run("encoding="+ae, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/big.bin", nil)
			req.Host = "site.localhost"
			req.Header.Set("Accept-Encoding", ae)
			w := &discardWriter{h: http.Header{}}
			v.edge.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
			b.SetBytes(int64(w.n))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				v.edge.ServeHTTP(w, req)
			}
		})
	}
}
