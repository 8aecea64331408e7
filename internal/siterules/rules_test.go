package siterules

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// netlifyRedirects holds the forms of Netlify's _redirects documentation.
const netlifyRedirects = `# Redirects from what the browser requests to what we serve
/home              /
/blog/my-post.php  /blog/my-post
/news              /blog
/cuties            https://www.petsofnetlify.com

/my-redirect  /              302
/see-other    /              303
/temporary    /              307
/permanent    /              308
/ecommerce    /store-closed  404
/pass-through /index.html    200

/news/*       /blog/:splat
/news/:month/:date/:year/:slug  /blog/:year/:month/:date/:slug
/old/:slug    /new-:slug.html   301 # a comment after the rule

/store id=:id  /blog/:id  301
/articles id=:id tag=:tag /posts/:tag/:id 301
/things type=photos /photos 302

/app/*  /app/index.html  200!
/en/*   /en/404.html     404
`

func mustParse(t *testing.T, redirects, headers string) *Rules {
	t.Helper()
	r, errs := Parse([]byte(redirects), []byte(headers))
	if len(errs) > 0 {
		t.Fatalf("Parse: %v", errs)
	}
	return r
}

func TestRedirectForms(t *testing.T) {
	r := mustParse(t, netlifyRedirects, "")
	for _, c := range []struct {
		path, query string
		forced      bool
		status      int
		loc, target string
	}{
		{"/home", "", false, 301, "/", "/"},
		{"/home", "a=1", false, 301, "/?a=1", "/"},
		{"/home/", "", false, 301, "/", "/"},
		{"/blog/my-post.php", "", false, 301, "/blog/my-post", "/blog/my-post"},
		{"/cuties", "", false, 301, "https://www.petsofnetlify.com", ""},
		{"/cuties", "x=1", false, 301, "https://www.petsofnetlify.com?x=1", ""},
		{"/my-redirect", "", false, 302, "/", "/"},
		{"/see-other", "", false, 303, "/", "/"},
		{"/temporary", "", false, 307, "/", "/"},
		{"/permanent", "", false, 308, "/", "/"},
		{"/ecommerce", "", false, 404, "", "/store-closed"},
		{"/pass-through", "", false, 200, "", "/index.html"},
		{"/news/2024/a", "", false, 301, "/blog/2024/a", "/blog/2024/a"},
		{"/news", "", false, 301, "/blog", "/blog"}, // the literal rule comes first
		{"/old/hello", "", false, 301, "/new-hello.html", "/new-hello.html"},
		{"/old/a b", "", false, 301, "/new-a%20b.html", "/new-a b.html"},
		{"/store", "id=42", false, 301, "/blog/42", "/blog/42"},
		{"/articles", "tag=go&id=7", false, 301, "/posts/go/7", "/posts/go/7"},
		{"/things", "type=photos", false, 302, "/photos", "/photos"},
		{"/app/deep/link", "", true, 200, "", "/app/index.html"},
		{"/en/missing", "", false, 404, "", "/en/404.html"},
	} {
		m, ok := r.Redirect(Clean(c.path), c.query, c.forced)
		if !ok || m.Status != c.status || m.Location != c.loc || m.Path != c.target {
			t.Errorf("%s?%s: %+v %v, want %d %q %q", c.path, c.query, m, ok, c.status, c.loc, c.target)
		}
	}
	for _, c := range []struct {
		path, query string
		forced      bool
	}{
		{"/nothing", "", false},
		{"/store", "", false},             // the query parameter is required
		{"/things", "type=videos", false}, // a literal value must be equal
		{"/articles", "id=1", false},      // every parameter is required
		{"/home", "", true},               // not forced: an existing file shadows it
		{"/old/a/b", "", false},           // a placeholder is one segment
	} {
		if m, ok := r.Redirect(Clean(c.path), c.query, c.forced); ok {
			t.Errorf("%s?%s forced=%v: matched %+v", c.path, c.query, c.forced, m)
		}
	}
	if !r.HasForced() {
		t.Error("HasForced = false")
	}
}

func TestSplatMatchesItsDirectory(t *testing.T) {
	r := mustParse(t, "/a/* /b/:splat 302\n/* /index.html 200\n", "")
	for path, want := range map[string]string{"/a": "/b/", "/a/x/y": "/b/x/y"} {
		if m, ok := r.Redirect(Clean(path), "", false); !ok || m.Location != want {
			t.Errorf("%s: %+v, want %s", path, m, want)
		}
	}
	if m, ok := r.Redirect("/", "", false); !ok || m.Status != 200 || m.Path != "/index.html" {
		t.Errorf("/: %+v %v", m, ok)
	}
}

func TestRefusedRedirects(t *testing.T) {
	for line, want := range map[string]string{
		"/a":                                     "no target",
		"a /b":                                   "must start with /",
		"/a b":                                   "must be a path starting with /",
		"/a /b 418":                              "status",
		"/a /b 302 Country=au,nz":                "conditions such as Country=",
		"/admin/* /x 200! Role=admin":            "conditions such as Role=",
		"/x https://example.com 404":             "404 to an external URL",
		"/p/* https://:splat/x 200":              "target", // not a URL, or a host from a placeholder
		"/p/* https://api.example.com:splat 200": "target",
		"/p/:h https://:h.example.com/ 200":      "target",
		"/p/* https://api.example.com#:splat 200":                       "only after the host",
		"/p https://u:pw@api.example.com/ 200":                          "credentials",
		"http://blog.example.com/* https://example.com/blog/:splat 301": "domain-level",
		"/a*b /c":         "splat",
		"/*/x /c":         "splat",
		"/a:b /c":         "whole segment",
		"/:1 /c":          "bad placeholder",
		"/:a/:a /c":       "twice",
		"/a?x=1 /c":       "query conditions",
		"/a /b 302 extra": "unexpected",
		"/a/../b /c":      "segment",
		"/a \x01 /c":      "control",
	} {
		_, errs := Parse([]byte("# first line\n"+line+"\n"), nil)
		if len(errs) != 1 {
			t.Errorf("%q: %v, want one error", line, errs)
			continue
		}
		var le *LineError
		if !errors.As(errs[0], &le) || le.Line != 2 || !strings.Contains(le.Msg, want) || !errors.Is(errs[0], ErrInvalid) {
			t.Errorf("%q: %v, want line 2 with %q", line, errs[0], want)
		}
	}
}

func TestCheckNamesTheFirstLine(t *testing.T) {
	err := Check([]byte("/ok /fine\n/bad\n/x /y 999\n"), []byte("/a\n  Content-Length: 3\n"), Options{})
	if err == nil || err.Error() != "_redirects line 2: no target: want `from to [status][!]` (and 2 more refused lines)" {
		t.Errorf("Check = %v", err)
	}
	if err := Check([]byte(netlifyRedirects), []byte(spaHeaders), Options{}); err != nil {
		t.Errorf("Check(valid) = %v", err)
	}
}

const spaHeaders = `# SPA
/*
  X-Frame-Options: DENY
  Content-Security-Policy: default-src 'self'
/assets/*
  Cache-Control: public, max-age=31536000, immutable
/index.html
  Cache-Control: no-cache
/api/:version/docs
  X-Version: docs
/multi
  Link: </a.css>; rel=preload
  Link: </b.js>; rel=preload
/*
  X-Frame-Options: SAMEORIGIN
`

func TestHeaders(t *testing.T) {
	r := mustParse(t, "", spaHeaders)
	h := http.Header{"Cache-Control": {"public, max-age=0, must-revalidate"}}
	r.Headers("/assets/app-3f2a.js", h)
	want := http.Header{
		"Cache-Control":           {"public, max-age=31536000, immutable"},
		"X-Frame-Options":         {"DENY, SAMEORIGIN"},
		"Content-Security-Policy": {"default-src 'self'"},
	}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("headers of an asset:\n%v\nwant\n%v", h, want)
	}
	h = http.Header{}
	r.Headers("/api/v2/docs", h)
	if h.Get("X-Version") != "docs" || h.Get("Cache-Control") != "" {
		t.Errorf("placeholder rule: %v", h)
	}
	h = http.Header{}
	r.Headers("/multi", h)
	if got := h.Get("Link"); got != "</a.css>; rel=preload, </b.js>; rel=preload" {
		t.Errorf("Link = %q", got)
	}
}

func TestRefusedHeaders(t *testing.T) {
	for text, want := range map[string]string{
		"  X-A: b\n":                         "before any path",
		"/a\n  Content-Length: 3\n":          "cannot set Content-Length",
		"/a\n  etag: \"x\"\n":                "cannot set Etag",
		"/a\n  Connection: close\n":          "hop-by-hop",
		"/a\n  Transfer-Encoding: chunked\n": "hop-by-hop",
		"/a\n  X-Cairn-Version: 1\n":         "X-Cairn-",
		"/a\n  Basic-Auth: u:p\n":            "password",
		"/a\n  no colon\n":                   "Name: value",
		"/a\n  Bad Name: v\n":                "Name: value",
		"/a\n  ! X-Powered-By\n":             "detaching",
		"https://example.com/a\n  X-A: b\n":  "absolute URLs",
		"/a*\n  X-A: b\n":                    "splat",
	} {
		_, errs := Parse(nil, []byte(text))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want) || !errors.Is(errs[0], ErrInvalid) {
			t.Errorf("%q: %v, want one error with %q", text, errs, want)
		}
	}
}

func TestLimits(t *testing.T) {
	var b strings.Builder
	for i := range MaxRules + 1 {
		fmt.Fprintf(&b, "/r%d /t 301\n", i)
	}
	_, errs := Parse([]byte(b.String()), nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "more than") {
		t.Errorf("%d rules: %v", MaxRules+1, errs)
	}
	_, errs = Parse([]byte("/a /"+strings.Repeat("b", maxLine)+"\n"), nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "longer") {
		t.Errorf("long line: %v", errs)
	}
}

// The matcher looks only at candidate rules: a request costs the same with
// 1,000 literal rules as with one.
func TestMatcherDoesNotAllocate(t *testing.T) {
	var red, hdr strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&red, "/old/page-%d /new/page-%d 301\n", i, i)
	}
	red.WriteString("/blog/:year/:slug /posts/:slug 302\n")
	for i := range 100 {
		fmt.Fprintf(&hdr, "/static/file-%d.css\n  X-N: %d\n", i, i)
	}
	hdr.WriteString("/assets/*\n  Cache-Control: immutable\n")
	r := mustParse(t, red.String(), hdr.String())
	h := http.Header{}
	n := testing.AllocsPerRun(100, func() {
		if _, ok := r.Redirect("/assets/a.css", "", false); ok {
			t.Fatal("matched")
		}
		r.Headers("/assets/a.css", h)
	})
	if n != 0 {
		t.Errorf("%v allocations per request", n)
	}
	if m, ok := r.Redirect("/old/page-999", "", false); !ok || m.Location != "/new/page-999" {
		t.Errorf("rule 999: %+v", m)
	}
}

func TestByteOrderMarkAndCRLF(t *testing.T) {
	r := mustParse(t, "\ufeff/a /b 302\r\n/c /d\r\n", "\ufeff/a\r\n  X-A: 1\r\n")
	if m, ok := r.Redirect("/a", "", false); !ok || m.Location != "/b" || m.Status != 302 {
		t.Errorf("/a: %+v %v", m, ok)
	}
	if m, ok := r.Redirect("/c", "", false); !ok || m.Location != "/d" {
		t.Errorf("/c: %+v %v", m, ok)
	}
	h := http.Header{}
	r.Headers("/a", h)
	if h.Get("X-A") != "1" {
		t.Errorf("headers %v", h)
	}
}
