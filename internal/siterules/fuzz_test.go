package siterules

import (
	"net/http"
	"net/url"
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
	f.Add(proxyRedirects, "/api/a/b", "k=v")
	f.Add("/p/:a/* https://h.example:8443/:a/x/:splat?y=:a 200!\n", "/p/@evil.com/y/z", "q=1")
	f.Add("/p/* http://h.example?x=:splat 200\n", "/p/a/b", "")
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
			if m.Proxy {
				checkProxyTarget(t, text, m)
				continue
			}
			if (m.Status == 200 || m.Status == 404) && !strings.HasPrefix(m.Path, "/") {
				t.Fatalf("rewrite to %q", m.Path)
			}
		}
	})
}

// checkProxyTarget: a proxy match is a 200 to an http(s) URL whose host is
// the one its rule wrote, whatever the request.
func checkProxyTarget(t *testing.T, text string, m Match) {
	base, _, _ := strings.Cut(m.Location, "?") // the query is the request's, as sent
	u, err := url.Parse(base)
	if m.Status != 200 || err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil {
		t.Fatalf("proxy %+v: %v", m, err)
	}
	line := strings.Split(text, "\n")[m.Line-1]
	if !strings.Contains(line, u.Scheme+"://"+u.Host) {
		t.Fatalf("proxy to %q from the rule %q", m.Location, line)
	}
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
