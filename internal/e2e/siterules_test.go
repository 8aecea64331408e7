package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// netlifyFixture is a site holding every _redirects form of Netlify's
// documentation that cairn supports, and the pages they lead to.
var netlifyFixture = map[string]string{
	"index.html":            "home",
	"store-closed.html":     "the store is closed",
	"blog/my-post.html":     "my post",
	"blog/2024/05/10/hello": "hello post",
	"app/index.html":        "app shell",
	"app/exists.html":       "shadowed by a forced rule",
	"en/404.html":           "english not found",
	"shadowed.html":         "the file wins",
	"404.html":              "site not found",
	"_redirects": `# Netlify's documented forms, one per line
/home              /
/blog/my-post.php  /blog/my-post.html
/news              /blog
/cuties            https://www.petsofnetlify.com

/my-redirect  /              302
/see-other    /              303
/temporary    /              307
/permanent    /              308
/ecommerce    /store-closed.html  404
/pass-through /index.html    200

/shadowed.html /index.html 200

/old-news/*   /blog/:splat
/news/:month/:date/:year/:slug  /blog/:year/:month/:date/:slug 200

/store id=:id  /blog/:id  301
/articles id=:id tag=:tag /posts/:tag/:id 301
/things type=photos /photos 302

/app/*  /app/index.html  200!
/en/*   /en/404.html     404
`,
	"_headers": `/*
  X-Frame-Options: DENY
/blog/*
  Cache-Control: public, max-age=3600
`,
}

// noFollow fetches from the edge without following redirects.
func (e *env) noFollow(host, path string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.edge+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSiteRulesNetlifyForms publishes the fixture through the real server
// and checks that each rule answers as Netlify documents it.
func TestSiteRulesNetlifyForms(t *testing.T) {
	e := start(t)
	e.publish("docs", netlifyFixture)
	const host = "docs.localhost"
	for _, c := range []struct {
		path   string
		status int
		want   string // body, or Location of a redirect
	}{
		{"/home", 301, "/"}, // no status: 301
		{"/home?ref=x", 301, "/?ref=x"},
		{"/blog/my-post.php", 301, "/blog/my-post.html"},
		{"/news", 301, "/blog"},
		{"/cuties", 301, "https://www.petsofnetlify.com"},
		{"/my-redirect", 302, "/"},
		{"/see-other", 303, "/"},
		{"/temporary", 307, "/"},
		{"/permanent", 308, "/"},
		{"/ecommerce", 404, "the store is closed"},
		{"/pass-through", 200, "home"},
		{"/shadowed.html", 200, "the file wins"}, // an existing file shadows an unforced rule
		{"/old-news/2024/a", 301, "/blog/2024/a"},
		{"/news/05/10/2024/hello", 200, "hello post"},
		{"/store?id=my-post.html", 301, "/blog/my-post.html"},
		{"/store", 404, "site not found"}, // the parameter is required
		{"/articles?id=7&tag=go", 301, "/posts/go/7"},
		{"/things?type=photos", 302, "/photos"},
		{"/things?type=videos", 404, "site not found"},
		{"/app/exists.html", 200, "app shell"}, // forced over the file
		{"/app/deep/link", 200, "app shell"},
		{"/en/anything", 404, "english not found"},
		{"/_redirects", 404, "site not found"},
		{"/_headers", 404, "site not found"},
	} {
		resp, body := e.noFollow(host, c.path)
		got := body
		if c.status/100 == 3 {
			got = resp.Header.Get("Location")
		}
		if resp.StatusCode != c.status || got != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.path, resp.StatusCode, got, c.status, c.want)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: no X-Frame-Options from _headers", c.path)
		}
	}
	resp, _ := e.noFollow(host, "/blog/my-post.html")
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=3600" {
		t.Errorf("Cache-Control %q: the site's must win over the default", cc)
	}
}

// TestSiteRulesRefused: a publish with an unsupported or bad line is
// refused with 400 problem+json naming the file and the line.
func TestSiteRulesRefused(t *testing.T) {
	e := start(t)
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "bad", "kind": "static"}), nil)
	for _, c := range []struct {
		file, text, want string
	}{
		{"_redirects", "/ok /fine\n/blog/* https://blog.example.com/:splat 200\n", "_redirects line 2: proxying \"/blog/*\" to the external URL"},
		{"_redirects", "# c\n\n/ /anz 302 Country=au,nz\n", "_redirects line 3: conditions such as Country="},
		{"_redirects", "http://blog.example.com/* https://example.com/:splat 301\n", "_redirects line 1: domain-level"},
		{"_redirects", "/a /b 418\n", "_redirects line 1: status"},
		{"_headers", "/*\n  X-A: b\n  Content-Length: 1\n", "_headers line 3: a site cannot set Content-Length"},
		{"_headers", "/*\n  Connection: close\n", "_headers line 2: a site cannot set Connection (hop-by-hop)"},
	} {
		var p map[string]any
		code, hdr := e.do("POST", "/v1/deployments/bad/versions",
			bytes.NewReader(tarOf(t, map[string]string{"index.html": "x", c.file: c.text})), &p)
		detail, _ := p["detail"].(string)
		if code != 400 || !strings.HasPrefix(detail, c.want) || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: %d %v, want 400 %q", c.text, code, p, c.want)
		}
	}
}

// reactFixture is a React-style build: an entrypoint and hashed assets.
var reactFixture = map[string]string{
	"index.html": `<!doctype html><html><head><script type="module" src="/assets/index-4f9a2c1e.js"></script>` +
		`<link rel="stylesheet" href="/assets/index-8b3d0a77.css"></head><body><div id="root"></div></body></html>`,
	"assets/index-4f9a2c1e.js":  "import{r as e}from'./vendor-1c2d3e4f.js';e(document.getElementById('root'))",
	"assets/vendor-1c2d3e4f.js": "export function r(n){n.textContent='app'}",
	"assets/index-8b3d0a77.css": "#root{font-family:sans-serif}",
	"favicon.ico":               "ico",
	"_headers": `/assets/*
  Cache-Control: public, max-age=31536000, immutable
/index.html
  Cache-Control: no-cache
`,
}

// TestSPAFixture: deep links of a single-page app answer 200 with the
// entrypoint, through the deployment setting (cairn deployment set --spa)
// or through `/* /index.html 200`, and hashed assets carry the immutable
// Cache-Control their _headers give.
func TestSPAFixture(t *testing.T) {
	e := start(t)
	e.publish("spa", reactFixture)
	const host = "spa.localhost"
	html := []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	if resp, _ := e.noFollow(host, "/users/42", html...); resp.StatusCode != 404 {
		t.Fatalf("deep link before spa: %d", resp.StatusCode)
	}
	if out, errOut, code := e.runCLI(t.TempDir(), "deployment", "set", "spa", "--spa"); code != 0 || !strings.Contains(out, "spa on") {
		t.Fatalf("cairn deployment set --spa: %d %q %q", code, out, errOut)
	}
	var d map[string]any
	e.do("GET", "/v1/deployments/spa", nil, &d)
	if d["spa"] != true || d["clean_urls"] != false {
		t.Errorf("deployment %v", d)
	}
	check := func(what string) {
		t.Helper()
		for _, p := range []string{"/users/42", "/settings/profile", "/"} {
			resp, body := e.noFollow(host, p, html...)
			if resp.StatusCode != 200 || body != reactFixture["index.html"] {
				t.Errorf("%s: deep link %s: %d %.40q", what, p, resp.StatusCode, body)
			}
		}
		for _, p := range []string{"/assets/index-4f9a2c1e.js", "/assets/vendor-1c2d3e4f.js", "/assets/index-8b3d0a77.css"} {
			resp, body := e.noFollow(host, p, "Accept", "*/*")
			if resp.StatusCode != 200 || body != reactFixture[p[1:]] ||
				resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
				t.Errorf("%s: asset %s: %d %q", what, p, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
		}
	}
	check("spa setting")
	if resp, _ := e.noFollow(host, "/assets/missing.js", "Accept", "*/*"); resp.StatusCode != 404 {
		t.Errorf("a missing asset is not a page: %d", resp.StatusCode)
	}

	// The same app with `/* /index.html 200` and no setting.
	withRule := map[string]string{"_redirects": "/* /index.html 200\n"}
	for k, v := range reactFixture {
		withRule[k] = v
	}
	e.publish("spa2", withRule)
	e.do("PATCH", "/v1/deployments/spa2", e.jsonBody(map[string]any{"spa": false}), nil)
	for _, p := range []string{"/users/42", "/a/b/c"} {
		resp, body := e.noFollow("spa2.localhost", p, html...)
		if resp.StatusCode != 200 || body != reactFixture["index.html"] {
			t.Errorf("/* rule: deep link %s: %d", p, resp.StatusCode)
		}
	}
	resp, _ := e.noFollow("spa2.localhost", "/assets/index-4f9a2c1e.js")
	if resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("/* rule: asset Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

// TestCleanURLsSetting: PATCH clean_urls makes /about serve about.html and
// /about.html redirect (308) to /about; a non-static deployment refuses it.
func TestCleanURLsSetting(t *testing.T) {
	e := start(t)
	e.publish("pages", map[string]string{"index.html": "home", "about.html": "about"})
	var d map[string]any
	if code, _ := e.do("PATCH", "/v1/deployments/pages", e.jsonBody(map[string]any{"clean_urls": true}), &d); code != 200 || d["clean_urls"] != true {
		t.Fatalf("PATCH clean_urls: %d %v", code, d)
	}
	if resp, body := e.noFollow("pages.localhost", "/about"); resp.StatusCode != 200 || body != "about" {
		t.Errorf("/about: %d %q", resp.StatusCode, body)
	}
	if resp, _ := e.noFollow("pages.localhost", "/about.html"); resp.StatusCode != 308 || resp.Header.Get("Location") != "/about" {
		t.Errorf("/about.html: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "img", "kind": "oci"}), nil)
	if code, _ := e.do("PATCH", "/v1/deployments/img", e.jsonBody(map[string]any{"spa": true}), nil); code != 400 {
		t.Errorf("spa on an oci deployment: %d", code)
	}
}
