package edge

import (
	"bytes"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"

	"github.com/cairnhq/cairn/internal/release"
)

// minGzip: smaller files are sent as they are (the gzip header and trailer
// alone are 18 bytes, and a tiny response costs the same either way).
const minGzip = 256

// gzippable reports whether the edge offers ent gzipped or brotli-
// compressed to clients that accept either: text-like content of at least minGzip bytes. Images, fonts
// in compressed formats, archives and media are compressed already.
func gzippable(ent *release.Entry) bool {
	if ent.Size < minGzip {
		return false
	}
	t, _, _ := strings.Cut(ent.ContentType, ";")
	switch {
	case strings.HasPrefix(t, "text/"), strings.HasSuffix(t, "+json"), strings.HasSuffix(t, "+xml"):
		return true
	}
	switch t {
	case "application/javascript", "application/json", "application/xml", "application/wasm",
		"image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
		"font/ttf", "font/otf", "application/vnd.ms-fontobject", "application/x-font-ttf":
		return true
	}
	return false
}

var gzipWriters = sync.Pool{New: func() any {
	w, err := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	if err != nil {
		panic(err) // only on an invalid level
	}
	return w
}}

// gzipBytes returns data gzipped, in a slice of its own length (it is
// cached, and counted by its length). Writing to memory cannot fail.
func gzipBytes(data []byte) []byte {
	var b bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&b)
	w.Write(data)
	w.Close()
	gzipWriters.Put(w)
	return bytes.Clone(b.Bytes())
}

// brotliLevel: the edge compresses a file once and caches it, so it can
// afford more than a proxy compressing every response; 11 would take ~10×
// as long for a few percent.
const brotliLevel = 9

var brotliWriters = sync.Pool{New: func() any { return brotli.NewWriterLevel(nil, brotliLevel) }}

// brotliBytes is gzipBytes for brotli.
func brotliBytes(data []byte) []byte {
	var b bytes.Buffer
	w := brotliWriters.Get().(*brotli.Writer)
	w.Reset(&b)
	w.Write(data)
	w.Close()
	brotliWriters.Put(w)
	return bytes.Clone(b.Bytes())
}
