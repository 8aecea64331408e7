package edge

import (
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"site.localhost":                "site.localhost",
		"Site.LOCALHOST:7880":           "site.localhost",
		"www.example.com.":              "www.example.com",
		"www.example.com.:443":          "www.example.com",
		"a--v2.localhost":               "a--v2.localhost",
		"127.0.0.1:80":                  "127.0.0.1",
		"x":                             "x",
		"":                              "",
		":80":                           "",
		"[::1]:80":                      "",
		"a..b":                          "",
		".a":                            "",
		"-a.b":                          "",
		"a-.b":                          "",
		"a.b-":                          "",
		"a_b.c":                         "",
		"a b":                           "",
		"a:b":                           "",
		"a.b:80:80":                     "",
		"é.com":                         "",
		strings.Repeat("a", 63):         strings.Repeat("a", 63),
		strings.Repeat("a", 64):         "",
		strings.Repeat("a.", 126) + "a": strings.Repeat("a.", 126) + "a",
		strings.Repeat("a.", 127) + "a": "",
	} {
		got, ok := parseHost(in)
		if got != want || ok != (want != "") {
			t.Errorf("parseHost(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestSiteLabel(t *testing.T) {
	type res struct {
		name string
		n    int64
		ok   bool
	}
	for in, want := range map[string]res{
		"site.localhost":        {"site", 0, true},
		"site--v12.localhost":   {"site", 12, true},
		"my-site--v1.localhost": {"my-site", 1, true},
		"a--b--v3.localhost":    {"a--b", 3, true},
		"site--v0.localhost":    {"site--v0", 0, true},
		"site--v01.localhost":   {"site--v01", 0, true},
		"site--v.localhost":     {"site--v", 0, true},
		"site--vx.localhost":    {"site--vx", 0, true},
		"localhost":             {},
		"a.b.localhost":         {},
		"sitelocalhost":         {},
		"site.localhost.com":    {},
		"www.example.com":       {},
	} {
		name, n, ok := siteLabel(in, "localhost")
		if (res{name, n, ok}) != want {
			t.Errorf("siteLabel(%q) = %q %d %v, want %v", in, name, n, ok, want)
		}
	}
	if _, _, ok := siteLabel("site.localhost", ""); ok {
		t.Error("no base domain: no site hosts")
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"site.localhost", "A--V3.LocalHost:8080", "[::1]:80", "a..b.", "x.y.", "é", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, ok := parseHost(in)
		if !ok {
			if h != "" {
				t.Fatalf("%q: %q returned with ok false", in, h)
			}
			return
		}
		if len(h) == 0 || len(h) > 253 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			t.Fatalf("%q: bad host %q", in, h)
		}
		for _, l := range strings.Split(h, ".") {
			if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("%q: bad label %q in %q", in, l, h)
			}
		}
		if again, ok := parseHost(h); !ok || again != h {
			t.Fatalf("%q: not idempotent: %q → %q %v", in, h, again, ok)
		}
		if !strings.EqualFold(h, strings.TrimSuffix(in[:len(h)], ".")) {
			t.Fatalf("%q: %q is not its prefix", in, h)
		}
		if name, n, ok := siteLabel(h, "localhost"); ok && (name == "" || n < 0 || strings.Contains(name, ".")) {
			t.Fatalf("%q: siteLabel %q %d", h, name, n)
		}
	})
}

func TestAcceptsZstd(t *testing.T) {
	for in, want := range map[string]bool{
		"zstd":                   true,
		"gzip, zstd":             true,
		"gzip,ZSTD;q=0.5":        true,
		"zstd;q=1":               true,
		"zstd;q=1.000":           true,
		"zstd; Q=0.001":          true,
		"zstd ; q = 0.3":         true,
		"br;q=0, zstd;level=3":   true,
		"":                       false,
		"gzip, br":               false,
		"zstd;q=0":               false,
		"zstd;q=0.":              false,
		"zstd;q=0.000":           false,
		"zstd;q=1.5":             false,
		"zstd;q=2":               false,
		"zstd;q=0.0001":          false,
		"zstd;q=":                false,
		"zstd;q=-1":              false,
		"*":                      false,
		"zstdx, xzstd":           false,
		"gzip;q=1, zstd;q=0, br": false,
	} {
		if got := acceptsZstd([]string{in}); got != want {
			t.Errorf("acceptsZstd(%q) = %v", in, got)
		}
	}
	if !acceptsZstd([]string{"gzip", "zstd"}) {
		t.Error("several header lines")
	}
}

func FuzzAcceptsZstd(f *testing.F) {
	for _, s := range []string{"zstd", "gzip, zstd;q=0.5", "zstd;q=0", "*;q=0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := acceptsZstd([]string{in})
		if !strings.Contains(strings.ToLower(in), "zstd") && got {
			t.Fatalf("%q accepted without zstd", in)
		}
		if acceptsGzip([]string{in}) && !strings.Contains(strings.ToLower(in), "gzip") {
			t.Fatalf("%q accepted without gzip", in)
		}
	})
}
