package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/release"
)

// coding is a representation of a file: its content, its stored zstd
// frames, or its content gzipped or brotli-compressed by the edge.
type coding uint8

const (
	identity coding = iota
	zstdFrames
	gzipped
	brotlied
)

// fileKey names one representation of a file of a release.
type fileKey struct {
	sha    string // release sha256
	path   string // TOC path
	coding coding
}

// file is a verified representation held in the hot cache, with its
// response headers precomputed. Immutable.
type file struct {
	data     []byte
	etag     []string
	ctype    []string
	clen     []string
	encoding []string // Content-Encoding; nil for the content itself
}

// fileOverhead approximates the memory of a cached file beyond its bytes.
const fileOverhead = 512

var codingNames = [...]string{identity: "", zstdFrames: "zstd", gzipped: "gzip", brotlied: "br"}

func newFile(e *release.Entry, data []byte, c coding) *file {
	f := &file{data: data, etag: []string{etag(e, c)}, ctype: []string{contentType(e)},
		clen: []string{strconv.Itoa(len(data))}}
	if c != identity {
		f.encoding = []string{codingNames[c]}
	}
	return f
}

// etag is the strong ETag of a representation of a file: its content hash,
// suffixed by the coding for the encoded ones.
func etag(e *release.Entry, c coding) string {
	if c == identity {
		return `"` + e.SHA256 + `"`
	}
	return `"` + e.SHA256 + "-" + codingNames[c] + `"`
}

func contentType(e *release.Entry) string {
	if e.ContentType == "" {
		return "application/octet-stream"
	}
	return e.ContentType
}

// cacheable reports whether a representation is small enough for the hot
// cache; others are streamed (and never gzipped).
func (e *Edge) cacheable(ent *release.Entry, c coding) bool {
	return ent.Size <= e.maxFile && (c != zstdFrames || ent.FrameLength <= e.maxFile)
}

// loadFile returns a verified, cached representation of ent (its content
// or its stored frames), reading it on a miss (once for concurrent misses).
// ent must be cacheable.
func (e *Edge) loadFile(ctx context.Context, rt *route, ent *release.Entry, c coding) (*file, error) {
	k := fileKey{rt.sha, ent.Path, c}
	if f, ok := e.files.get(k); ok {
		return f, nil
	}
	return e.fileFl.do(ctx, k, func(ctx context.Context) (*file, error) {
		if f, ok := e.files.get(k); ok { // loaded by a flight that just ended
			return f, nil
		}
		read := release.ReadFile
		if c == zstdFrames {
			read = readRaw
		}
		data, err := read(ctx, rt.rr, ent)
		if err != nil {
			return nil, fmt.Errorf("release %s, %q: %w", rt.sha, ent.Path, err)
		}
		f := newFile(ent, data, c)
		e.files.add(k, f, int64(len(data)+len(ent.Path))+fileOverhead)
		return f, nil
	})
}

// inlineGzip: files up to this size are compressed (gzip, brotli) on their
// first request (a few milliseconds at most); larger ones in the
// background.
const inlineGzip = 64 << 10

// noGzip is cached under the gzip (or brotli) key of a file that the
// coding would not shrink by a tenth: its content is sent instead.
var noGzip = &file{}

// compressors are the codings the edge makes itself, from a file's content.
var compressors = [...]func([]byte) []byte{gzipped: gzipBytes, brotlied: brotliBytes}

// gzipFile returns the representation of ent in c (gzipped or brotlied)
// once it is made (and cached), else its content. A file of up to
// inlineGzip bytes is compressed at once (once for concurrent requests); a
// larger one in the background for later requests unless another file is
// being compressed, so that compression never holds up a response. ent
// must be cacheable.
func (e *Edge) gzipFile(ctx context.Context, rt *route, ent *release.Entry, c coding) (*file, error) {
	k := fileKey{rt.sha, ent.Path, c}
	f, known := e.files.get(k)
	if known && f != noGzip {
		return f, nil
	}
	id, err := e.loadFile(ctx, rt, ent, identity)
	if err != nil || known { // known: noGzip
		return id, err
	}
	if ent.Size <= inlineGzip {
		f, err := e.fileFl.do(ctx, k, func(context.Context) (*file, error) {
			if f, ok := e.files.get(k); ok { // made by a flight that just ended
				return f, nil
			}
			return e.makeGzip(k, ent, id), nil
		})
		if err != nil || f == noGzip {
			return id, err
		}
		return f, nil
	}
	select {
	case e.gzipping <- struct{}{}:
		go func() {
			defer func() { <-e.gzipping }()
			if _, ok := e.files.get(k); !ok {
				e.makeGzip(k, ent, id)
			}
		}()
	default:
	}
	return id, nil
}

// makeGzip compresses the content id of ent in k.coding and caches the
// result under k, or noGzip where it would not save a tenth of the bytes.
func (e *Edge) makeGzip(k fileKey, ent *release.Entry, id *file) *file {
	f, cost := noGzip, int64(len(ent.Path))+fileOverhead
	if z := compressors[k.coding](id.data); len(z) < len(id.data)-len(id.data)/10 {
		f = newFile(ent, z, k.coding)
		cost += int64(len(z))
	}
	e.files.add(k, f, cost)
	return f
}

// readRaw reads the stored frames of a file with frames of its own and
// checks them: each frame must decode with a valid checksum to its chunk
// of the content, and the content must match its sha256.
func readRaw(ctx context.Context, rr release.RangeReader, ent *release.Entry) ([]byte, error) {
	off, n, ok := ent.RawSpan()
	if !ok {
		return nil, fmt.Errorf("%q has no frames of its own", ent.Path)
	}
	rc, err := rr.ReadRange(ctx, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw := make([]byte, n)
	if _, err := io.ReadFull(rc, raw); err != nil {
		return nil, fmt.Errorf("read frames: %w", err)
	}
	fr := newFrames(ent)
	h := sha256.New()
	bufp := getBuf()
	defer putBuf(bufp)
	for i := range fr.count() {
		ro, rn := fr.raw(i)
		dec, err := decodeFrame(raw[ro:ro+rn], *bufp, fr.contentLen(i))
		if err != nil {
			return nil, err
		}
		h.Write(dec)
	}
	if hex.EncodeToString(h.Sum(nil)) != ent.SHA256 {
		return nil, fmt.Errorf("%w: frames of %q do not match its sha256", release.ErrCorrupt, ent.Path)
	}
	return raw, nil
}

// frames locates the frames of a file stored in frames of its own:
// ChunkSize bytes of content each but the last, compressed lengths in
// Entry.Chunks (or one frame of FrameLength).
type frames struct {
	ent  *release.Entry
	offs []int64 // raw offset of each frame from FrameOffset, then FrameLength
}

func newFrames(ent *release.Entry) frames {
	offs := make([]int64, 1, len(ent.Chunks)+2)
	if len(ent.Chunks) == 0 {
		offs = append(offs, ent.FrameLength)
	}
	for _, c := range ent.Chunks {
		offs = append(offs, offs[len(offs)-1]+c)
	}
	return frames{ent: ent, offs: offs}
}

func (f frames) count() int { return len(f.offs) - 1 }

// raw returns frame i's offset from FrameOffset and its compressed length.
func (f frames) raw(i int) (off, n int64) { return f.offs[i], f.offs[i+1] - f.offs[i] }

func (f frames) contentLen(i int) int64 {
	return min(release.ChunkSize, f.ent.Size-int64(i)*release.ChunkSize)
}

// maxFrame bounds the compressed length of one frame (incompressible data
// grows by a few bytes per block).
const maxFrame = release.ChunkSize + 64<<10

var (
	bufs     = sync.Pool{New: func() any { b := make([]byte, 0, maxFrame); return &b }}
	decoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxFrame), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			panic(err) // only on invalid options
		}
		return d
	}}
)

func getBuf() *[]byte  { return bufs.Get().(*[]byte) }
func putBuf(b *[]byte) { bufs.Put(b) }

// decodeFrame decodes one zstd frame into dst (reusing its capacity); the
// frame checksum is verified and the output must be exactly want bytes.
func decodeFrame(frame, dst []byte, want int64) ([]byte, error) {
	if int64(len(frame)) > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", release.ErrCorrupt, len(frame))
	}
	d := decoders.Get().(*zstd.Decoder)
	out, err := d.DecodeAll(frame, dst[:0])
	decoders.Put(d)
	if err != nil || int64(len(out)) != want {
		return nil, fmt.Errorf("%w: frame does not decode to its chunk", release.ErrCorrupt)
	}
	return out, nil
}
