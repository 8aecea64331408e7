package edge

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/release"
)

func decodeZstd(t *testing.T, b []byte) string {
	t.Helper()
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := d.DecodeAll(b, nil)
	if err != nil {
		t.Fatalf("decoding the passed-through body: %v", err)
	}
	return string(out)
}

func TestZstdPassthrough(t *testing.T) {
	// Streamed as well as cached: a small cache bound streams big.txt.
	for _, maxFile := range []int64{0, 100 << 10} {
		t.Run("max file "+strconv.FormatInt(maxFile, 10), func(t *testing.T) {
			testZstdPassthrough(t, Config{MaxCachedFile: maxFile})
		})
	}
}

func testZstdPassthrough(t *testing.T, cfg Config) {
	v := newEnv(t, cfg)
	big := text(1, 300<<10) // own frame, compressible
	_, res := v.publish(v.deploy("site"), map[string]string{"big.txt": big, "small.txt": "tiny"}, true)
	ent, _ := res.TOC.Lookup("big.txt")
	_, frameLen, ok := ent.RawSpan()
	if !ok {
		t.Fatal("big.txt has no frames of its own")
	}
	const host = "site.localhost"

	resp, body := v.mustGet(host, "/big.txt", 200, "Accept-Encoding: gzip;q=0.5, zstd")
	if resp.Header.Get("Content-Encoding") != "zstd" || resp.Header.Get("Vary") != "Accept-Encoding" ||
		resp.ContentLength != frameLen || int64(len(body)) != frameLen {
		t.Fatalf("passthrough headers %v, %d bytes, frames %d", resp.Header, len(body), frameLen)
	}
	zetag := resp.Header.Get("Etag")
	if zetag != `"`+ent.SHA256+`-zstd"` || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("ETag %q, Content-Type %q", zetag, resp.Header.Get("Content-Type"))
	}
	if decodeZstd(t, body) != big {
		t.Fatal("decoded body differs from the file")
	}
	resp, body = v.mustGet(host, "/big.txt", 304, "Accept-Encoding: zstd", "If-None-Match: "+zetag)
	if len(body) != 0 || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("304: %v", resp.Header)
	}
	resp, body = v.get(http.MethodHead, host, "/big.txt", "Accept-Encoding: zstd")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != frameLen || resp.Header.Get("Content-Encoding") != "zstd" {
		t.Errorf("HEAD: %d %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}

	// The identity representation: neither zstd nor gzip accepted (gzip:
	// gzip_test.go), or a Range asked for.
	for _, hdrs := range [][]string{
		nil,
		{"Accept-Encoding: deflate, compress"},
		{"Accept-Encoding: zstd;q=0"},
		{"Accept-Encoding: zstd; q=0.000, gzip;q=0"},
		{"Accept-Encoding: *"},
		{"Accept-Encoding: zstd;q=bogus"},
		{"Accept-Encoding: deflate", "If-None-Match: " + zetag},
	} {
		resp, body := v.mustGet(host, "/big.txt", 200, hdrs...)
		if resp.Header.Get("Content-Encoding") != "" || string(body) != big ||
			resp.Header.Get("Etag") != `"`+ent.SHA256+`"` || resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%q: encoding %q, ETag %q, %d bytes", hdrs, resp.Header.Get("Content-Encoding"),
				resp.Header.Get("Etag"), len(body))
		}
	}
	resp, body = v.mustGet(host, "/big.txt", 206, "Accept-Encoding: zstd", "Range: bytes=1000-1999")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != big[1000:2000] {
		t.Errorf("range with zstd accepted: %v", resp.Header)
	}
	// Files sharing a frame are never passed through, and do not vary.
	resp, body = v.mustGet(host, "/small.txt", 200, "Accept-Encoding: zstd")
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" || string(body) != "tiny" {
		t.Errorf("small file: %v %q", resp.Header, body)
	}
}

func TestLargeFileStreamed(t *testing.T) {
	v := newEnv(t, Config{})
	size := DefaultMaxCachedFile + 1<<20 + 123 // 5 frames of 4 MiB, not cached
	big := text(2, size/2) + noise(3, size-size/2)
	_, res := v.publish(v.deploy("site"), map[string]string{"video.mp4": big}, true)
	ent, _ := res.TOC.Lookup("video.mp4")
	if len(ent.Chunks) != 5 {
		t.Fatalf("%d frames", len(ent.Chunks))
	}
	const host = "site.localhost"
	resp, body := v.mustGet(host, "/video.mp4", 200)
	if string(body) != big || resp.ContentLength != int64(size) || resp.Header.Get("Content-Type") != "video/mp4" ||
		resp.Header.Get("Etag") != `"`+ent.SHA256+`"` {
		t.Fatalf("whole file: %d bytes, %v", len(body), resp.Header)
	}
	for _, r := range [][2]int{{0, 0}, {5, 100}, {release.ChunkSize - 10, release.ChunkSize + 10},
		{release.ChunkSize, 3 * release.ChunkSize}, {size - 7, size - 1}, {1, size - 1}} {
		hdr := "Range: bytes=" + strconv.Itoa(r[0]) + "-" + strconv.Itoa(r[1])
		resp, body := v.mustGet(host, "/video.mp4", 206, hdr)
		if string(body) != big[r[0]:r[1]+1] || resp.ContentLength != int64(r[1]-r[0]+1) {
			t.Errorf("%s: %d bytes differ", hdr, len(body))
		}
	}
	v.mustGet(host, "/video.mp4", 416, "Range: bytes="+strconv.Itoa(size)+"-")
	if resp, _ := v.mustGet(host, "/video.mp4", 416, "Range: bytes=-0"); resp.Header.Get("Content-Range") != "bytes */"+strconv.Itoa(size) {
		t.Errorf("bytes=-0 of a streamed file: %v", resp.Header)
	}
	v.mustGet(host, "/video.mp4", 304, "If-None-Match: "+resp.Header.Get("Etag"))
	// Several ranges of a streamed file: answered whole.
	if _, body := v.mustGet(host, "/video.mp4", 200, "Range: bytes=0-1,10-20"); string(body) != big {
		t.Error("multi-range of a streamed file")
	}
	resp, body = v.get(http.MethodHead, host, "/video.mp4")
	if resp.ContentLength != int64(size) || len(body) != 0 {
		t.Errorf("HEAD: %d", resp.ContentLength)
	}
	resp, body = v.mustGet(host, "/video.mp4", 200, "Accept-Encoding: zstd")
	if resp.Header.Get("Content-Encoding") != "zstd" || resp.ContentLength != ent.FrameLength || decodeZstd(t, body) != big {
		t.Errorf("streamed passthrough: %v", resp.Header)
	}
	if n, used := v.edge.files.stats(); n != 0 || used != 0 {
		t.Errorf("a streamed file was cached: %d items, %d bytes", n, used)
	}
}
