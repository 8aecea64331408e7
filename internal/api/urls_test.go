package api

import (
	"net/url"
	"strings"
	"testing"
)

func TestParsePublicURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://sites.example.com":      "https://app.sites.example.com/",
		"http://localhost:7880/":         "http://app.localhost:7880/",
		"HTTPS://Sites.Example.COM:8443": "https://app.sites.example.com:8443/",
	} {
		s, err := ParsePublicURL(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := s.site("app"); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "sites.example.com", "ftp://x.test", "https://", "https://x.test/path",
		"https://x.test?q=1", "https://u:p@x.test", "https://x.test/#f", "http://[::1]:80", "http://a..b", "http://-a.b", "http://x.test:0", "http://x.test:99999"} {
		if _, err := ParsePublicURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParsePublicURL: whatever is accepted makes site URLs that parse back
// to the same scheme, a host under the base, and the root path.
func FuzzParsePublicURL(f *testing.F) {
	for _, s := range []string{"https://sites.example.com", "http://localhost:7880", "http://[::1]:80/", "https://a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sites, err := ParsePublicURL(s)
		if err != nil {
			return
		}
		u, err := url.Parse(sites.site("app--v2"))
		if err != nil {
			t.Fatalf("%q made %q: %v", s, sites.site("app--v2"), err)
		}
		if u.Scheme != sites.scheme || u.Path != "/" || !strings.HasPrefix(u.Host, "app--v2.") {
			t.Fatalf("%q made %q", s, sites.site("app--v2"))
		}
	})
}
