package siterules

import (
	"errors"
	"strings"
	"testing"
)

// proxyRedirects holds the proxy forms of Netlify's documentation (a
// rewrite, status 200, to an external URL) between rules of other kinds.
const proxyRedirects = `/home /
/api/*  https://api.example.com/:splat  200
/shop/:id  https://shop.example.com/items/:id?ref=site  200
/search q=:q  https://search.example.com/find?query=:q  200
/legacy  http://old.example.com  200!
/moved  https://example.com/moved  301
`

func TestCheckProxyNeedsTheSetting(t *testing.T) {
	err := Check([]byte(proxyRedirects), nil, Options{})
	var le *LineError
	if !errors.As(err, &le) || !errors.Is(err, ErrInvalid) || le.Line != 2 {
		t.Fatalf("Check without proxy = %v, want line 2", err)
	}
	for _, want := range []string{"_redirects line 2: proxying \"/api/*\"", "proxy_rewrites", "(and 3 more refused lines)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check without proxy = %q, want %q in it", err, want)
		}
	}
	if err := Check([]byte(proxyRedirects), nil, Options{Proxy: true}); err != nil {
		t.Errorf("Check with proxy = %v", err)
	}
	// A syntax error before the first proxy rule is still the first named.
	err = Check([]byte("/a\n"+proxyRedirects), []byte("/h\n  ETag: x\n"), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "_redirects line 1: no target") || !strings.Contains(err.Error(), "(and 5 more") {
		t.Errorf("Check(bad line first) = %v", err)
	}
	// Without proxy rules, the setting changes nothing.
	if err := Check([]byte(netlifyRedirects), nil, Options{}); err != nil {
		t.Errorf("Check(no proxy rules) = %v", err)
	}
}

func TestProxyMatches(t *testing.T) {
	r := mustParse(t, proxyRedirects, "") // the edge parses proxy rules always
	if !r.HasProxy() || mustParse(t, netlifyRedirects, "").HasProxy() {
		t.Fatal("HasProxy")
	}
	for _, c := range []struct {
		path, query string
		forced      bool
		loc         string
	}{
		{"/api/v1/users", "", false, "https://api.example.com/v1/users"},
		{"/api/v1/users", "page=2&x=%20", false, "https://api.example.com/v1/users?page=2&x=%20"},
		{"/api/a b/c", "", false, "https://api.example.com/a%20b/c"},
		{"/api", "", false, "https://api.example.com/"},
		{"/shop/42", "", false, "https://shop.example.com/items/42?ref=site"},    // the target's own query
		{"/shop/42", "a=1", false, "https://shop.example.com/items/42?ref=site"}, // replaces the request's
		{"/search", "q=a b&z=1", false, "https://search.example.com/find?query=a+b"},
		{"/legacy", "k=v", true, "http://old.example.com?k=v"},
	} {
		m, ok := r.Redirect(Clean(c.path), c.query, c.forced)
		if !ok || !m.Proxy || m.Status != 200 || m.Location != c.loc || m.Path != "" {
			t.Errorf("%s?%s: %+v %v, want a proxy to %q", c.path, c.query, m, ok, c.loc)
		}
	}
	if m, ok := r.Redirect("/moved", "", false); !ok || m.Proxy || m.Status != 301 {
		t.Errorf("/moved: %+v %v", m, ok)
	}
	if m, ok := r.Redirect("/api/x", "", true); ok {
		t.Errorf("/api/x forced only: %+v", m) // without "!", a file shadows a proxy rule
	}
}
