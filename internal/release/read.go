package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// RangeReader reads n bytes at off of one artifact. The caller closes the
// reader. Blob stores satisfy it through a small adapter.
type RangeReader interface {
	ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// RangeFunc adapts a function to RangeReader.
type RangeFunc func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// ReadRange calls f.
func (f RangeFunc) ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	return f(ctx, off, n)
}

// ReaderAt adapts an io.ReaderAt to RangeReader.
func ReaderAt(ra io.ReaderAt) RangeReader {
	return RangeFunc(func(_ context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(ra, off, n)), nil
	})
}

func readExactly(ctx context.Context, rr RangeReader, off, n int64) ([]byte, error) {
	rc, err := rr.ReadRange(ctx, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

// tailRead is how much of the end of an artifact ReadTOC fetches at once:
// for most releases the TOC and footer fit, so the TOC costs one ranged read.
const tailRead = 64 << 10

// ReadTOC reads the footer and the TOC of an artifact of the given size:
// one ranged read of the tail, and a second one only for a TOC larger than
// that.
func ReadTOC(ctx context.Context, rr RangeReader, size int64) (*TOC, error) {
	if size < FooterSize {
		return nil, corruptf("artifact of %d bytes has no footer", size)
	}
	n := min(size, tailRead)
	tail, err := readExactly(ctx, rr, size-n, n)
	if err != nil {
		return nil, err
	}
	f, err := ParseFooter(tail[n-FooterSize:], size)
	if err != nil {
		return nil, err
	}
	if f.TOCLength > maxTOCBytes {
		return nil, corruptf("TOC of %d bytes", f.TOCLength)
	}
	var frame []byte
	if start := f.TOCOffset - (size - n); start >= 0 {
		frame = tail[start : start+f.TOCLength]
	} else if frame, err = readExactly(ctx, rr, f.TOCOffset, f.TOCLength); err != nil {
		return nil, err
	}
	toc, err := ParseTOC(frame, f.TOCOffset)
	if err != nil {
		return nil, err
	}
	if (f.Flags&FlagRootfs != 0) != (toc.Kind == KindRootfs) {
		return nil, corruptf("footer flags do not match the TOC kind %q", toc.Kind)
	}
	return toc, nil
}

var decoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(2*ChunkSize+GroupSize), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		panic(err)
	}
	return d
}}

// RawSpan returns where the compressed frames holding exactly e's content
// sit, for passing them through as Content-Encoding: zstd. ok is false for
// entries that share a frame or have no content.
func (e *Entry) RawSpan() (off, n int64, ok bool) {
	if e.Type != TypeFile || e.Size == 0 || e.Shared {
		return 0, 0, false
	}
	return e.FrameOffset, e.FrameLength, true
}

// ReadFile returns the whole content of a file entry, verified against its
// sha256. Use it for entries that fit in memory; OpenRange streams.
func ReadFile(ctx context.Context, rr RangeReader, e *Entry) ([]byte, error) {
	if e.Type != TypeFile {
		return nil, fmt.Errorf("%q is not a file", e.Path)
	}
	if e.Size == 0 {
		return []byte{}, nil
	}
	var b []byte
	if e.Shared {
		frame, err := readExactly(ctx, rr, e.FrameOffset, e.FrameLength)
		if err != nil {
			return nil, err
		}
		d := decoders.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(frame, nil)
		decoders.Put(d)
		if err != nil || int64(len(out)) < e.InFrame+e.Size {
			return nil, corruptf("shared frame of %q", e.Path)
		}
		b = out[e.InFrame : e.InFrame+e.Size : e.InFrame+e.Size]
	} else {
		rc, err := OpenRange(ctx, rr, e, 0, e.Size)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b = make([]byte, e.Size)
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, corruptf("content of %q: %v", e.Path, err)
		}
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.SHA256 {
		return nil, corruptf("content of %q does not match its sha256", e.Path)
	}
	return b, nil
}

// OpenRange streams n bytes from offset off of a file's content with one
// ranged read. Each zstd frame's checksum is verified as it is decoded; a
// read of the whole file also checks the content sha256 at EOF.
func OpenRange(ctx context.Context, rr RangeReader, e *Entry, off, n int64) (io.ReadCloser, error) {
	if e.Type != TypeFile || off < 0 || n < 0 || off+n > e.Size {
		return nil, fmt.Errorf("range %d+%d outside %q", off, n, e.Path)
	}
	if n == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if e.Shared {
		b, err := ReadFile(ctx, rr, e)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
	}
	first, last := off/ChunkSize, (off+n-1)/ChunkSize
	coff, clen := e.FrameOffset, e.FrameLength
	if len(e.Chunks) > 0 {
		for _, c := range e.Chunks[:first] {
			coff += c
		}
		clen = 0
		for _, c := range e.Chunks[first : last+1] {
			clen += c
		}
	}
	src, err := rr.ReadRange(ctx, coff, clen)
	if err != nil {
		return nil, err
	}
	d := decoders.Get().(*zstd.Decoder)
	if err := d.Reset(src); err != nil {
		src.Close()
		decoders.Put(d)
		return nil, err
	}
	fr := &frameReader{src: src, d: d, skip: off - first*ChunkSize, left: n}
	if off == 0 && n == e.Size {
		fr.h, fr.want = sha256.New(), e.SHA256
	}
	return fr, nil
}

type frameReader struct {
	src  io.ReadCloser
	d    *zstd.Decoder
	skip int64
	left int64
	h    hash.Hash
	want string
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.d == nil {
		return 0, io.ErrClosedPipe
	}
	if f.skip > 0 {
		if _, err := io.CopyN(io.Discard, f.d, f.skip); err != nil {
			return 0, corruptf("skip: %v", err)
		}
		f.skip = 0
	}
	if f.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.d.Read(p)
	f.left -= int64(n)
	if f.h != nil {
		f.h.Write(p[:n])
	}
	if f.left == 0 {
		if f.h != nil && hex.EncodeToString(f.h.Sum(nil)) != f.want {
			return n, corruptf("content does not match its sha256")
		}
		return n, io.EOF
	}
	if err == io.EOF {
		return n, corruptf("content ends early")
	}
	if err != nil {
		return n, corruptf("decode: %v", err)
	}
	return n, nil
}

func (f *frameReader) Close() error {
	if f.d == nil {
		return nil
	}
	f.d.Reset(nil)
	decoders.Put(f.d)
	f.d = nil
	return f.src.Close()
}
