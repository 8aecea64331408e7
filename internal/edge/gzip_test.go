package edge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return string(out)
}

// TestGzip: text files are sent gzipped to clients that accept gzip (and,
// for files without frames of their own, to zstd clients that also accept
// gzip), compressed once and cached; Range, incompressible, tiny and
// already-compressed files are sent as they are.
func TestGzip(t *testing.T) {
	v := newEnv(t, Config{})
	page := "<!doctype html>" + strings.Repeat("<p>hello, gzip</p>\n", 400) // shares a frame
	big := text(7, 300<<10)                                                 // frames of its own
	tree := map[string]string{"index.html": page, "big.txt": big, "app.js": strings.Repeat("let x = 1;\n", 100),
		"noise.txt": noise(8, 4096), "tiny.css": "a{}", "logo.png": strings.Repeat("png", 500)}
	_, res := v.publish(v.deploy("site"), tree, true)
	const host = "site.localhost"
	sum := func(p string) string { e, _ := res.TOC.Lookup(p); return e.SHA256 }

	// A file over inlineGzip is sent as it is until its gzipped form, made
	// in the background after the first request, is ready.
	resp, body := v.mustGet(host, "/big.txt", 200, "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != big || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("big.txt, first request: %v", resp.Header)
	}
	waitFor(t, func() bool {
		_, ok := v.edge.files.get(fileKey{res.SHA256, "big.txt", gzipped})
		return ok
	})

	for _, c := range []struct {
		path, ae string
		want     string // Content-Encoding
	}{
		{"/index.html", "gzip, deflate, br", "br"}, // equal q: br first
		{"/index.html", "gzip, br;q=0.9", "gzip"},
		{"/index.html", "x-gzip", "gzip"},
		{"/index.html", "gzip, zstd", "gzip"}, // shares a frame: no zstd to pass through
		{"/app.js", "gzip", "gzip"},
		{"/big.txt", "gzip", "gzip"},
		{"/big.txt", "gzip, zstd", "zstd"}, // the stored frames win: nothing to compress
		{"/index.html", "gzip;q=0, br", "br"},
		{"/index.html", "gzip;q=0, br;q=0", ""},
		{"/index.html", "*", ""},
		{"/noise.txt", "gzip", ""}, // gzip would not save a tenth
		{"/tiny.css", "gzip", ""},
		{"/logo.png", "gzip", ""},
	} {
		resp, body := v.mustGet(host, c.path, 200, "Accept-Encoding: "+c.ae)
		got := resp.Header.Get("Content-Encoding")
		var content string
		switch got {
		case "gzip":
			content = gunzip(t, body)
		case "zstd":
			content = decodeZstd(t, body)
		case "br":
			content = unbrotli(t, body)
		default:
			content = string(body)
		}
		wantETag := `"` + sum(c.path[1:]) + `"`
		if c.want != "" {
			wantETag = `"` + sum(c.path[1:]) + "-" + c.want + `"`
		}
		if got != c.want || content != tree[c.path[1:]] || resp.Header.Get("Etag") != wantETag ||
			resp.ContentLength != int64(len(body)) {
			t.Errorf("%s with %q: encoding %q (want %q), ETag %s, Content-Length %d for %d bytes, content ok %v",
				c.path, c.ae, got, c.want, resp.Header.Get("Etag"), resp.ContentLength, len(body), content == tree[c.path[1:]])
		}
		if vary := resp.Header.Get("Vary"); (vary == "Accept-Encoding") != (c.path != "/tiny.css" && c.path != "/logo.png") {
			t.Errorf("%s: Vary %q", c.path, vary)
		}
	}

	// Conditional requests and HEAD on the gzipped representation.
	resp, body = v.mustGet(host, "/index.html", 200, "Accept-Encoding: gzip")
	gzETag, gzLen := resp.Header.Get("Etag"), len(body)
	if gzLen >= len(page)/2 {
		t.Errorf("gzipped page: %d bytes of %d", gzLen, len(page))
	}
	v.mustGet(host, "/index.html", 304, "Accept-Encoding: gzip", "If-None-Match: "+gzETag)
	resp, body = v.mustGet(host, "/index.html", 200, "Accept-Encoding: gzip", `If-None-Match: "other"`)
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(gzLen) || gunzip(t, body) != page {
		t.Errorf("gzip through ServeContent: %v", resp.Header)
	}
	// The identity ETag does not match the gzipped representation.
	v.mustGet(host, "/index.html", 200, "Accept-Encoding: gzip", `If-None-Match: "`+sum("index.html")+`"`)
	resp, body = v.get(http.MethodHead, host, "/index.html", "Accept-Encoding: gzip")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(gzLen) || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("HEAD: %d %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	// A Range is served from the content, whatever is accepted.
	resp, body = v.mustGet(host, "/index.html", 206, "Accept-Encoding: gzip", "Range: bytes=5-14")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != page[5:15] {
		t.Errorf("range: %v %q", resp.Header, body)
	}
	// The root serves the entrypoint gzipped too.
	if resp, body := v.mustGet(host, "/", 200, "Accept-Encoding: gzip"); resp.Header.Get("Content-Encoding") != "gzip" || gunzip(t, body) != page {
		t.Errorf("/: %v", resp.Header)
	}
}

// TestGzipStreamed: a file too large for the hot cache is streamed as it
// is (or as its stored frames), never compressed on the fly.
func TestGzipStreamed(t *testing.T) {
	v := newEnv(t, Config{MaxCachedFile: 100 << 10})
	big := text(9, 300<<10)
	v.publish(v.deploy("site"), map[string]string{"big.txt": big}, true)
	resp, body := v.mustGet("site.localhost", "/big.txt", 200, "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != big {
		t.Errorf("streamed: %v", resp.Header)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"gzip": true, "GZIP;q=0.5": true, "br, x-gzip": true, "deflate, gzip;q=1.0": true,
		"": false, "*": false, "gzip;q=0": false, "br": false, "gzipx": false, "x-gzip;q=0, gzip": false,
	} {
		if got := acceptsGzip([]string{ae}); got != want {
			t.Errorf("%q: %v, want %v", ae, got, want)
		}
	}
}

// TestGzipCacheBound: files gzip does not pay for hold no bytes under their
// gzip key, so the hot cache stays within its bound however browsers ask.
func TestGzipCacheBound(t *testing.T) {
	const limit = 1 << 20
	v := newEnv(t, Config{CacheBytes: limit})
	tree := map[string]string{}
	for i := range 60 {
		tree[fmt.Sprintf("f%02d.txt", i)] = noise(uint64(i), 40<<10)
	}
	v.publish(v.deploy("site"), tree, true)
	// Earlier files are asked for again and again (their gzip keys stay
	// recent), while their content entries age out.
	for i := range 60 {
		for j := 0; j <= i; j++ {
			v.mustGet("site.localhost", fmt.Sprintf("/f%02d.txt", j), 200, "Accept-Encoding: gzip")
		}
	}
	c := v.edge.files
	c.mu.Lock()
	held := map[*byte]int{}
	for _, n := range c.items {
		if len(n.val.data) > 0 {
			held[&n.val.data[0]] = cap(n.val.data)
		}
	}
	c.mu.Unlock()
	total := 0
	for _, n := range held {
		total += n
	}
	if total > limit {
		t.Errorf("the hot cache holds %d bytes of files, bound %d", total, limit)
	}
}
