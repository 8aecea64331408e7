package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

func (v *env) setSite(d *meta.Deployment, spa, clean bool) {
	v.t.Helper()
	if _, err := v.meta.SetPolicy(context.Background(), d.ID, meta.Policy{SPA: &spa, CleanURLs: &clean}, "test"); err != nil {
		v.t.Fatal(err)
	}
	v.edge.Invalidate()
}

func TestSiteRedirects(t *testing.T) {
	v := newEnv(t, Config{})
	d := v.deploy("site")
	v.publish(d, map[string]string{
		"index.html":     "home",
		"about.html":     "about",
		"exists.html":    "the file",
		"forced.html":    "shadowed by a forced rule",
		"app/index.html": "app shell",
		"en/404.html":    "english not found",
		"404.html":       "site not found",
		"_redirects": `/old /about.html 302
/exists.html /elsewhere 301
/forced.html /about.html 200!
/rewrite /about.html
/pass /about.html 200
/app/* /app/index.html 200
/en/* /en/404.html 404
/go/* https://example.com/:splat 307
/missing-target /nope.html 200
`,
		"_headers": "/*\n  X-Frame-Options: DENY\n/about.html\n  Cache-Control: public, max-age=60\n",
	}, true)
	host := "site.localhost"
	resp, _ := v.mustGet(host, "/old?x=1", http.StatusFound)
	if loc := resp.Header.Get("Location"); loc != "/about.html?x=1" {
		t.Errorf("Location %q", loc)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("a redirect lacks the site's headers: %v", resp.Header)
	}
	if _, body := v.mustGet(host, "/exists.html", http.StatusOK); string(body) != "the file" {
		t.Errorf("an existing file must shadow an unforced rule: %q", body)
	}
	if _, body := v.mustGet(host, "/forced.html", http.StatusOK); string(body) != "about" {
		t.Errorf("forced rewrite: %q", body)
	}
	v.mustGet(host, "/rewrite", http.StatusMovedPermanently) // default status 301
	resp, body := v.mustGet(host, "/pass", http.StatusOK)
	if string(body) != "about" || resp.Header.Get("Cache-Control") != "public, max-age=0, must-revalidate" {
		t.Errorf("rewrite: %q, Cache-Control %q (headers match the request path)", body, resp.Header.Get("Cache-Control"))
	}
	if _, body := v.mustGet(host, "/app/a/deep/link", http.StatusOK); string(body) != "app shell" {
		t.Errorf("splat rewrite: %q", body)
	}
	if _, body := v.mustGet(host, "/en/nothing", http.StatusNotFound); string(body) != "english not found" {
		t.Errorf("404 rule: %q", body)
	}
	resp, _ = v.mustGet(host, "/go/a/b?q=1", http.StatusTemporaryRedirect)
	if loc := resp.Header.Get("Location"); loc != "https://example.com/a/b?q=1" {
		t.Errorf("external Location %q", loc)
	}
	if _, body := v.mustGet(host, "/missing-target", http.StatusNotFound); string(body) != "site not found" {
		t.Errorf("rewrite to a missing file: %q", body)
	}
	for _, p := range []string{"/_redirects", "/_headers"} {
		if _, body := v.mustGet(host, p, http.StatusNotFound); string(body) != "site not found" {
			t.Errorf("%s is served: %q", p, body)
		}
	}
	resp, _ = v.mustGet(host, "/about.html", http.StatusOK)
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Errorf("site Cache-Control must win over the default: %q", cc)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Etag") == "" {
		t.Errorf("headers %v", resp.Header)
	}
}

func TestSPA(t *testing.T) {
	v := newEnv(t, Config{})
	d := v.deploy("app")
	v.publish(d, map[string]string{
		"index.html":           "<!doctype html><div id=root></div>",
		"assets/index-3f2a.js": "console.log(1)",
		"_headers":             "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n",
	}, true)
	host := "app.localhost"
	v.mustGet(host, "/users/42", http.StatusNotFound, "Accept: text/html")
	v.setSite(d, true, false)
	resp, body := v.mustGet(host, "/users/42", http.StatusOK, "Accept: text/html,application/xhtml+xml;q=0.9")
	if !strings.Contains(string(body), "root") || !strings.Contains(resp.Header.Get("Vary"), "Accept") {
		t.Errorf("deep link: %q, Vary %q", body, resp.Header.Get("Vary"))
	}
	v.mustGet(host, "/assets/missing.js", http.StatusNotFound, "Accept: */*")
	v.mustGet(host, "/users/42", http.StatusNotFound, "Accept: text/html;q=0")
	resp, _ = v.mustGet(host, "/assets/index-3f2a.js", http.StatusOK)
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("asset Cache-Control %q", cc)
	}
}

func TestCleanURLs(t *testing.T) {
	v := newEnv(t, Config{})
	d := v.deploy("docs")
	v.publish(d, map[string]string{
		"index.html":      "home",
		"about.html":      "about",
		"docs/index.html": "docs",
		"docs/intro.html": "intro",
		"both.html":       "both page",
		"both/index.html": "both dir",
		"file.txt":        "text",
	}, true)
	host := "docs.localhost"
	v.mustGet(host, "/about", http.StatusNotFound) // off by default
	v.mustGet(host, "/about.html", http.StatusOK)
	v.setSite(d, false, true)
	for _, c := range []struct {
		path   string
		status int
		want   string // body, or Location of a redirect
	}{
		{"/about", 200, "about"},
		{"/about.html", 308, "/about"},
		{"/about.html?x=1", 308, "/about?x=1"},
		{"/about/", 301, "/about"},
		{"/docs", 301, "/docs/"},
		{"/docs/", 200, "docs"},
		{"/docs/index.html", 308, "/docs/"},
		{"/docs/intro", 200, "intro"},
		{"/docs/intro.html", 308, "/docs/intro"},
		{"/index.html", 308, "/"},
		{"/both", 301, "/both/"},         // the directory keeps its URL
		{"/both.html", 200, "both page"}, // and the page keeps its .html
		{"/file.txt", 200, "text"},
		{"/file.txt/", 301, "/file.txt"},
		{"/nope", 404, ""},
	} {
		resp, body := v.mustGet(host, c.path, c.status)
		got := string(body)
		if c.status/100 == 3 {
			got = resp.Header.Get("Location")
		}
		if c.status != 404 && got != c.want {
			t.Errorf("%s: %d %q, want %q", c.path, resp.StatusCode, got, c.want)
		}
	}
}

// TestRulesLoadedOncePerRelease: the rules are read and compiled with the
// release's TOC; requests, and new routes to the same release, read
// nothing more.
func TestRulesLoadedOncePerRelease(t *testing.T) {
	var cb *countingBlobs
	v := newEnv(t, Config{}, func(e *Edge) { cb = &countingBlobs{Store: e.blobs}; e.blobs = cb })
	d := v.deploy("site")
	v.publish(d, map[string]string{"index.html": "home", "_redirects": "/a /b 302\n", "_headers": "/*\n  X-A: 1\n"}, true)
	v.mustGet("site.localhost", "/a", http.StatusFound)
	v.mustGet("site.localhost", "/", http.StatusOK) // index.html into the hot cache
	before := cb.opens.Load()
	for range 20 {
		if resp, _ := v.mustGet("site.localhost", "/a", http.StatusFound); resp.Header.Get("X-A") != "1" {
			t.Fatalf("headers %v", resp.Header)
		}
		v.mustGet("site.localhost", "/", http.StatusOK)
	}
	v.edge.Invalidate() // the route is resolved again; the release's TOC and rules are cached
	v.mustGet("site.localhost", "/a", http.StatusFound)
	v.mustGet("site--v1.localhost", "/a", http.StatusFound)
	if n := cb.opens.Load() - before; n != 0 {
		t.Errorf("%d storage reads after the rules were loaded", n)
	}
}
