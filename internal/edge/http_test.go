package edge

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/httprange"
)

var site = map[string]string{
	"index.html":           "<h1>home</h1>",
	"404.html":             "<h1>custom not found</h1>",
	"style.css":            "body{}",
	"app.js":               "console.log(1)",
	"data.json":            `{"a":1}`,
	"logo.svg":             "<svg/>",
	"blob.bin":             "\x00\x01",
	"README":               "plain",
	"empty.txt":            "",
	"docs/index.html":      "docs home",
	"docs/guide.html":      "guide",
	"docs/deep/index.html": "deep",
	"nodir/":               "",
	"latest":               "symlink:docs",
	"alias.html":           "symlink:docs/guide.html",
	"loop":                 "symlink:loop",
}

func newSite(t *testing.T) *env {
	v := newEnv(t, Config{})
	v.publish(v.deploy("site"), site, true)
	return v
}

func TestPaths(t *testing.T) {
	v := newSite(t)
	const host = "site.localhost"
	for _, c := range []struct {
		path, want string
	}{
		{"/", "<h1>home</h1>"},
		{"/index.html", "<h1>home</h1>"},
		{"/docs/", "docs home"},
		{"/docs/guide.html", "guide"},
		{"/docs/deep/", "deep"},
		{"/docs/../style.css", "body{}"},
		{"/./docs//guide.html", "guide"},
		{"/latest/guide.html", "guide"},
		{"/latest/", "docs home"},
		{"/alias.html", "guide"},
		{"/empty.txt", ""},
		{"/%64ocs/guide.html", "guide"},
	} {
		resp, body := v.mustGet(host, c.path, 200)
		if string(body) != c.want {
			t.Errorf("%s: %q, want %q", c.path, body, c.want)
		}
		if resp.Header.Get("Content-Length") != strconv.Itoa(len(c.want)) {
			t.Errorf("%s: Content-Length %q", c.path, resp.Header.Get("Content-Length"))
		}
	}
	for _, c := range []struct{ path, loc string }{
		{"/docs", "/docs/"},
		{"/docs?x=1&y=%20", "/docs/?x=1&y=%20"},
		{"/docs/deep", "/docs/deep/"},
		{"/latest", "/latest/"},
		{"/docs/guide.html/", "/docs/guide.html"},
		{"/a%20b/../docs", "/docs/"},
	} {
		resp, _ := v.mustGet(host, c.path, http.StatusMovedPermanently)
		if got := resp.Header.Get("Location"); got != c.loc {
			t.Errorf("%s: Location %q, want %q", c.path, got, c.loc)
		}
	}
	for _, p := range []string{"/missing", "/docs/missing.html", "/nodir/", "/loop", "/style.css/x", "/../../etc/passwd"} {
		resp, body := v.mustGet(host, p, 404)
		if string(body) != "<h1>custom not found</h1>" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			resp.Header.Get("Etag") != "" {
			t.Errorf("%s: %q %v", p, body, resp.Header)
		}
	}
	v.mustGet(host, "/a%00b", http.StatusBadRequest)
}

func TestPlain404WithoutPage(t *testing.T) {
	v := newEnv(t, Config{})
	v.publish(v.deploy("site"), map[string]string{"index.html": "x"}, true)
	resp, body := v.mustGet("site.localhost", "/nope", 404)
	if !strings.Contains(string(body), "404") || resp.Header.Get("X-Cairn-Version") == "" {
		t.Fatalf("%q %v", body, resp.Header)
	}
}

func TestEntrypoint(t *testing.T) {
	v := newEnv(t, Config{})
	d := v.deploy("app")
	// The manifest's entrypoint decides what / serves.
	v.publishEntry(d, map[string]string{"app.html": "the app", "index.html": "not this", "sub/index.html": "sub"}, true, "app.html")
	if _, body := v.mustGet("app.localhost", "/sub/", 200); string(body) != "sub" {
		t.Fatalf("/sub/ served %q", body)
	}
	if _, body := v.mustGet("app.localhost", "/", 200); string(body) != "the app" {
		t.Fatalf("/ served %q", body)
	}
	// An entrypoint naming a directory serves its index; one with a
	// leading slash is taken relative to the root.
	v.publishEntry(v.deploy("dir"), map[string]string{"www/index.html": "www"}, true, "www")
	v.publishEntry(v.deploy("abs"), map[string]string{"a/b.html": "b"}, true, "/a/./b.html")
	if _, body := v.mustGet("dir.localhost", "/", 200); string(body) != "www" {
		t.Errorf("directory entrypoint: %q", body)
	}
	if _, body := v.mustGet("abs.localhost", "/", 200); string(body) != "b" {
		t.Errorf("absolute entrypoint: %q", body)
	}
}

func TestContentTypes(t *testing.T) {
	v := newSite(t)
	for p, want := range map[string]string{
		"/index.html": "text/html; charset=utf-8", "/style.css": "text/css; charset=utf-8",
		"/app.js": "text/javascript; charset=utf-8", "/data.json": "application/json",
		"/logo.svg": "image/svg+xml", "/blob.bin": "application/octet-stream", "/README": "application/octet-stream",
	} {
		resp, _ := v.mustGet("site.localhost", p, 200)
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
}

func TestConditionalAndRange(t *testing.T) {
	v := newSite(t)
	const host = "site.localhost"
	resp, _ := v.mustGet(host, "/style.css", 200)
	etag := resp.Header.Get("Etag")
	if len(etag) != 66 || etag[0] != '"' || strings.HasPrefix(etag, "W/") || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("ETag %q, Accept-Ranges %q", etag, resp.Header.Get("Accept-Ranges"))
	}
	resp, body := v.mustGet(host, "/style.css", 304, "If-None-Match: "+etag)
	if len(body) != 0 || resp.Header.Get("Etag") != etag {
		t.Errorf("304: %q %v", body, resp.Header)
	}
	v.mustGet(host, "/style.css", 200, `If-None-Match: "other"`)
	v.mustGet(host, "/style.css", 304, "If-None-Match: *")
	v.mustGet(host, "/style.css", 412, `If-Match: "other"`)

	resp, body = v.mustGet(host, "/style.css", 206, "Range: bytes=1-3")
	if string(body) != "ody" || resp.Header.Get("Content-Range") != "bytes 1-3/6" {
		t.Errorf("206: %q %v", body, resp.Header)
	}
	_, body = v.mustGet(host, "/style.css", 206, "Range: bytes=-2")
	if string(body) != "{}" {
		t.Errorf("suffix range: %q", body)
	}
	resp, _ = v.mustGet(host, "/style.css", 416, "Range: bytes=100-")
	if resp.Header.Get("Content-Range") != "bytes */6" {
		t.Errorf("416: %v", resp.Header)
	}
	for _, rng := range []string{"bytes=-0", "bytes=6-", "bytes=5-2", "bytes=-0,6-"} {
		resp, body = v.mustGet(host, "/style.css", 416, "Range: "+rng)
		if resp.Header.Get("Content-Range") != "bytes */6" {
			t.Errorf("416 for %s: %v", rng, resp.Header)
		}
	}
	// More than httprange.MaxRanges ranges: the whole file, as nginx's max_ranges.
	if _, body = v.mustGet(host, "/style.css", 200, "Range: bytes="+strings.Repeat("0-0,", httprange.MaxRanges)+"1-1"); string(body) != "body{}" {
		t.Errorf("too many ranges: %q", body)
	}
	resp, body = v.mustGet(host, "/style.css", 206, "Range: bytes=0-0,2-2")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") || !strings.Contains(string(body), "\r\n\r\nb\r\n") {
		t.Errorf("multipart: %v %q", resp.Header, body)
	}
}

func TestHeadAndMethods(t *testing.T) {
	v := newSite(t)
	resp, body := v.get(http.MethodHead, "site.localhost", "/docs/guide.html")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len("guide")) || resp.Header.Get("Etag") == "" {
		t.Fatalf("HEAD: %d %q %d %v", resp.StatusCode, body, resp.ContentLength, resp.Header)
	}
	resp, body = v.get(http.MethodHead, "site.localhost", "/missing")
	if resp.StatusCode != 404 || len(body) != 0 || resp.ContentLength != int64(len(site["404.html"])) {
		t.Fatalf("HEAD 404: %d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, "PATCH"} {
		resp, _ := v.get(m, "site.localhost", "/")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}
