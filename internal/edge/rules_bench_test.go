package edge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// rulesFiles returns a 1,000-rule _redirects and a 100-rule _headers of
// every kind, as bench static publishes.
func rulesFiles() (redirects, headers string) {
	var red, hdr strings.Builder
	for i := range 1000 {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&red, "/old/page-%d /new/page-%d 301\n", i, i)
		case 1:
			fmt.Fprintf(&red, "/legacy-%d/* /archive/%d/:splat 302\n", i, i)
		case 2:
			fmt.Fprintf(&red, "/blog-%d/:year/:slug /posts/:year/:slug 301\n", i)
		case 3:
			fmt.Fprintf(&red, "/search-%d q=:q /find?q=:q 302\n", i)
		case 4:
			fmt.Fprintf(&red, "/app-%d/* /index.html 200!\n", i)
		}
	}
	for i := range 98 {
		fmt.Fprintf(&hdr, "/section-%d/*\n  X-Section: %d\n", i, i)
	}
	hdr.WriteString("/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n")
	hdr.WriteString("/css/*\n  Cache-Control: public, max-age=3600\n")
	return red.String(), hdr.String()
}

// BenchmarkRules serves a cached small file from the same site without
// and with a 1,000-rule _redirects and a 100-rule _headers.
func BenchmarkRules(b *testing.B) {
	v := newEnv(b, Config{})
	css := text(1, 4<<10)
	v.publish(v.deploy("plain"), map[string]string{"css/style.css": css}, true)
	red, hdr := rulesFiles()
	v.publish(v.deploy("rules"), map[string]string{"css/style.css": css, "_redirects": red, "_headers": hdr}, true)
	for _, host := range []string{"plain", "rules"} {
		b.Run(host, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/css/style.css", nil)
			req.Host = host + ".localhost"
			w := &discardWriter{h: http.Header{}}
			v.edge.ServeHTTP(w, req)
			if w.code != 200 || (host == "rules") != (w.h.Get("X-Frame-Options") == "DENY") {
				b.Fatalf("status %d, headers %v", w.code, w.h)
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				v.edge.ServeHTTP(w, req)
			}
		})
	}
}
