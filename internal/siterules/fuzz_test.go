package siterules

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzRedirects: any _redirects parses without panicking, every refused
// line is a *LineError in range, and matching any path against the rules
// that were kept does not panic and yields a status the syntax allows.
func FuzzRedirects(f *testing.F) {
	f.Add(netlifyRedirects, "/news/a/b", "id=1")
	f.Add("/* /index.html 200\n", "/x", "")
	f.Add("/:a/:b /:b/:a 302!\n", "/1/2", "")
	f.Add("/s q=:v /t?x=:v 307\n", "/s", "q=%20&q=2")
	f.Fuzz(func(t *testing.T, text, path, query string) {
		r, errs := Parse([]byte(text), nil)
		lines := strings.Count(text, "\n") + 2
		for _, err := range errs {
			le, ok := err.(*LineError)
			if !ok || le.Line < 1 || le.Line > lines {
				t.Fatalf("error %v", err)
			}
		}
		for _, forced := range []bool{false, true} {
			m, ok := r.Redirect(Clean(path), query, forced)
			if !ok {
				continue
			}
			if _, valid := statuses[itoa3(m.Status)]; !valid {
				t.Fatalf("status %d", m.Status)
			}
			if (m.Status == 200 || m.Status == 404) && !strings.HasPrefix(m.Path, "/") {
				t.Fatalf("rewrite to %q", m.Path)
			}
		}
	})
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// FuzzHeaders: any _headers parses without panicking, and the headers it
// sets are never reserved ones.
func FuzzHeaders(f *testing.F) {
	f.Add(spaHeaders, "/assets/a.js")
	f.Add("/a\n  X-A: 1\n  x-a: 2\n", "/a")
	f.Add("/:p/*\n\tCache-Control: no-store\n", "/p/q/r")
	f.Fuzz(func(t *testing.T, text, path string) {
		r, errs := Parse(nil, []byte(text))
		for _, err := range errs {
			if _, ok := err.(*LineError); !ok {
				t.Fatalf("error %v", err)
			}
		}
		h := http.Header{}
		r.Headers(Clean(path), h)
		for name := range h {
			if _, bad := Reserved[name]; bad || strings.HasPrefix(name, reservedPrefix) {
				t.Fatalf("set reserved %s", name)
			}
		}
	})
}
