package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/release"
)

// checkUpstream asserts a problem+json 502 without internal error text.
func checkUpstream(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: %d %q %.200q", what, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if p["type"] != "https://cairn.dev/problems/upstream" || p["status"] != float64(502) ||
		p["title"] == "" || p["request_id"] == "" {
		t.Errorf("%s: problem %v", what, p)
	}
	for _, leak := range []string{"corrupt", "frame", "sha256", "/", "blob"} {
		if strings.Contains(fmt.Sprint(p["title"], p["detail"]), leak) {
			t.Errorf("%s: problem leaks %q: %s", what, leak, body)
		}
	}
	if resp.Header.Get("Etag") != "" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("%s: file headers on a problem: %v", what, resp.Header)
	}
}

func TestCorruptBlob(t *testing.T) {
	v := newEnv(t, Config{})
	size := DefaultMaxCachedFile + 1<<20
	files := map[string]string{
		"index.html": "<h1>ok</h1>",
		"small.txt":  "a small file sharing a frame",
		"mid.bin":    noise(5, 200<<10), // own frame, cached
		"head.bin":   noise(6, size),    // streamed, corrupted in its first frame
		"tail.bin":   noise(7, size),    // streamed, corrupted in its last frame
		"zst.txt":    text(8, 200<<10),  // passthrough
	}
	_, res := v.publish(v.deploy("site"), files, true)
	const host = "site.localhost"
	v.mustGet(host, "/", 200) // route and TOC cached before the damage
	for p, at := range map[string]func(e *release.Entry) int64{
		"small.txt": func(e *release.Entry) int64 { return e.FrameOffset + e.FrameLength/2 },
		"mid.bin":   func(e *release.Entry) int64 { return e.FrameOffset + e.FrameLength/2 },
		"zst.txt":   func(e *release.Entry) int64 { return e.FrameOffset + e.FrameLength/2 },
		"head.bin":  func(e *release.Entry) int64 { return e.FrameOffset + 1000 },
		"tail.bin":  func(e *release.Entry) int64 { return e.FrameOffset + e.FrameLength - 100 },
	} {
		e, _ := res.TOC.Lookup(p)
		v.corrupt(res.SHA256, at(e), 8)
	}

	for _, c := range []struct{ path, enc string }{
		{"/small.txt", ""}, {"/mid.bin", ""}, {"/mid.bin", "zstd"}, {"/head.bin", ""},
		{"/zst.txt", ""}, {"/zst.txt", "zstd"},
	} {
		resp, body := v.get(http.MethodGet, host, c.path, "Accept-Encoding: "+c.enc)
		checkUpstream(t, c.path+" "+c.enc, resp, body)
	}
	resp, body := v.get(http.MethodGet, host, "/head.bin", "Range: bytes=10-20")
	checkUpstream(t, "range in a bad frame", resp, body)
	// A good frame of a damaged file is still served by range.
	if _, body := v.mustGet(host, "/head.bin", 206, fmt.Sprintf("Range: bytes=%d-%d", size-10, size-1)); string(body) != files["head.bin"][size-10:] {
		t.Error("good frame of a damaged file")
	}

	// The damage sits in the last frame: headers are out when it is found,
	// so the response must be cut short, never completed with wrong bytes.
	for _, enc := range []string{"", "zstd"} {
		req, _ := http.NewRequest(http.MethodGet, v.srv.URL+"/tail.bin", nil)
		req.Host = host
		req.Header.Set("Accept-Encoding", enc)
		resp, err := v.client.Do(req)
		if err != nil {
			continue // aborted before the headers: fine as well
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("tail.bin (%q): status %d, %d of %d bytes, %v", enc, resp.StatusCode, n, resp.ContentLength, err)
		if resp.StatusCode == 200 && err == nil {
			t.Errorf("tail.bin (%q): a complete %d-byte response with damaged content", enc, n)
		}
	}
	// The rest of the site is unharmed.
	if _, body := v.mustGet(host, "/", 200); string(body) != "<h1>ok</h1>" {
		t.Errorf("index: %q", body)
	}
}

func TestCorruptTOC(t *testing.T) {
	v := newEnv(t, Config{})
	_, res := v.publish(v.deploy("site"), map[string]string{"index.html": "x"}, true)
	v.corrupt(res.SHA256, res.Size-20, 4) // inside the footer
	resp, body := v.get(http.MethodGet, "site.localhost", "/")
	checkUpstream(t, "bad footer", resp, body)
}

func TestMissingBlob(t *testing.T) {
	v := newEnv(t, Config{})
	_, res := v.publish(v.deploy("site"), map[string]string{"index.html": "x"}, true)
	if err := v.blobs.Delete(t.Context(), digest.Digest("sha256:"+res.SHA256)); err != nil {
		t.Fatal(err)
	}
	resp, body := v.get(http.MethodGet, "site.localhost", "/")
	checkUpstream(t, "missing blob", resp, body)
}

func TestHotCacheBound(t *testing.T) {
	const bound = 300 << 10
	v := newEnv(t, Config{CacheBytes: bound})
	tree := map[string]string{}
	for i := range 20 {
		tree[fmt.Sprintf("f%02d.txt", i)] = text(uint64(i), 50<<10)
	}
	v.publish(v.deploy("site"), tree, true)
	for range 2 {
		for p, want := range tree {
			if _, body := v.mustGet("site.localhost", "/"+p, 200); string(body) != want {
				t.Fatalf("%s differs", p)
			}
			if _, used := v.edge.files.stats(); used > bound {
				t.Fatalf("cache holds %d bytes, bound %d", used, bound)
			}
		}
	}
	if n, used := v.edge.files.stats(); n < 2 || n >= 20 || used > bound {
		t.Errorf("cache: %d files, %d bytes", n, used)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](10)
	c.add("a", 1, 4)
	c.add("b", 2, 4)
	c.get("a") // b is now the least recently used
	c.add("c", 3, 4)
	if _, ok := c.get("b"); ok {
		t.Error("b not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.add("huge", 9, 11)
	c.add("a", 10, 6) // replace: 6 + 4
	if n, used := c.stats(); n != 2 || used != 10 {
		t.Errorf("%d items, %d bytes", n, used)
	}
	if v, _ := c.get("a"); v != 10 {
		t.Errorf("a = %d", v)
	}
}
