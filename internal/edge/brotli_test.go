package edge

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func unbrotli(t *testing.T, b []byte) string {
	t.Helper()
	out, err := io.ReadAll(brotli.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("brotli body: %v", err)
	}
	return string(out)
}

func TestNegotiate(t *testing.T) {
	names := map[coding]string{identity: "identity", zstdFrames: "zstd", gzipped: "gzip", brotlied: "br"}
	for _, c := range []struct {
		ae           string
		frames, text bool
		want         coding
	}{
		{"gzip, deflate, br, zstd", true, true, zstdFrames},
		{"gzip, deflate, br, zstd", false, true, brotlied},
		{"gzip, deflate, br", false, true, brotlied},
		{"gzip, deflate, br", true, false, identity}, // frames but no zstd, not text
		{"gzip;q=1, br;q=0.8", false, true, gzipped},
		{"br;q=0.5, gzip;q=0.4, zstd;q=0.6", true, true, zstdFrames},
		{"br;q=0.5, gzip;q=0.4, zstd;q=0.3", true, true, brotlied},
		{"zstd;q=0.5, gzip", true, true, gzipped},
		{"BR", false, true, brotlied},
		{"br;q=0", false, true, identity},
		{"br;q=0, x-gzip", false, true, gzipped},
		{"br;q=bogus, gzip;q=0.001", false, true, gzipped},
		{"br;q=1.5", false, true, identity},
		{"*", true, true, identity},
		{"identity, br;q=0.5", false, true, identity},
		{"identity;q=0.5, br", false, true, brotlied},
		{"br, br;q=0", false, true, brotlied}, // the first mention counts
		{"brotli, gzipx", false, true, identity},
		{"", true, true, identity},
	} {
		if got := negotiate([]string{c.ae}, c.frames, c.text); got != c.want {
			t.Errorf("negotiate(%q, frames %v, text %v) = %s, want %s", c.ae, c.frames, c.text, names[got], names[c.want])
		}
	}
	if got := negotiate([]string{"gzip;q=0.5", "br"}, false, true); got != brotlied {
		t.Errorf("several header lines: %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { negotiate([]string{"gzip, deflate, br;q=0.9, zstd"}, true, true) }); n != 0 {
		t.Errorf("negotiate allocates %v times", n)
	}
}

// TestBrotli: text files are sent brotli-compressed to clients that prefer
// br, compressed once and cached next to the gzipped form, with their own
// ETag; conditional requests and HEAD work on that representation.
func TestBrotli(t *testing.T) {
	v := newEnv(t, Config{})
	page := "<!doctype html>" + strings.Repeat("<p>hello, brotli</p>\n", 400)
	big := text(3, 300<<10)
	_, res := v.publish(v.deploy("site"), map[string]string{"index.html": page, "big.txt": big}, true)
	const host = "site.localhost"
	ent, _ := res.TOC.Lookup("index.html")

	resp, body := v.mustGet(host, "/index.html", 200, "Accept-Encoding: gzip, deflate, br")
	if resp.Header.Get("Content-Encoding") != "br" || resp.Header.Get("Etag") != `"`+ent.SHA256+`-br"` ||
		resp.Header.Get("Vary") != "Accept-Encoding" || resp.ContentLength != int64(len(body)) || unbrotli(t, body) != page {
		t.Fatalf("br: %v, %d bytes", resp.Header, len(body))
	}
	brLen := len(body)
	if _, ok := v.edge.files.get(fileKey{res.SHA256, "index.html", brotlied}); !ok {
		t.Error("the brotli form is not cached")
	}
	_, gz := v.mustGet(host, "/index.html", 200, "Accept-Encoding: gzip")
	if brLen >= len(gz) {
		t.Errorf("br %d bytes, gzip %d", brLen, len(gz))
	}
	v.mustGet(host, "/index.html", 304, "Accept-Encoding: br", "If-None-Match: "+resp.Header.Get("Etag"))
	resp, body = v.get("HEAD", host, "/index.html", "Accept-Encoding: br")
	if resp.ContentLength != int64(brLen) || len(body) != 0 || resp.Header.Get("Content-Encoding") != "br" {
		t.Errorf("HEAD: %v", resp.Header)
	}

	// A large file is compressed in the background, after its first
	// request, which gets the content (br beats its stored zstd frames only
	// when the client prefers it).
	resp, body = v.mustGet(host, "/big.txt", 200, "Accept-Encoding: br")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != big {
		t.Errorf("big.txt first request: %v", resp.Header)
	}
	waitFor(t, func() bool {
		_, ok := v.edge.files.get(fileKey{res.SHA256, "big.txt", brotlied})
		return ok
	})
	resp, body = v.mustGet(host, "/big.txt", 200, "Accept-Encoding: zstd;q=0.5, br")
	if resp.Header.Get("Content-Encoding") != "br" || unbrotli(t, body) != big {
		t.Errorf("big.txt: %v", resp.Header)
	}
	if resp, _ = v.mustGet(host, "/big.txt", 200, "Accept-Encoding: zstd, br"); resp.Header.Get("Content-Encoding") != "zstd" {
		t.Errorf("equal q: the stored frames win: %v", resp.Header)
	}
}
