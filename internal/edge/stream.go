package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"

	"github.com/cairnhq/cairn/internal/release"
)

// stream is an io.ReadSeeker over a file too large for the hot cache: its
// content or, when raw, its stored zstd frames. It reads lazily, one frame
// at a time, from the current offset, and releases no byte of a frame
// before the whole frame decoded with a valid checksum to the expected
// length. Reading the file in order from its first frame also checks the
// content sha256 before any byte of the last frame is released, so a
// reader never completes with wrong bytes. Close returns its buffers; the
// stream must not be used concurrently.
type stream struct {
	ctx  context.Context
	rr   release.RangeReader
	ent  *release.Entry
	fr   frames
	raw  bool
	size int64
	pos  int64

	cur   int    // loaded frame, -1: none
	start int64  // offset of buf[0]
	buf   []byte // what the loaded frame serves
	rawb  *[]byte
	decb  *[]byte

	src  io.ReadCloser // sequential reader positioned at frame next
	next int

	h      hash.Hash // nil once frames were not loaded in order from 0
	hashed int       // frames hashed so far
	err    error
}

func newStream(ctx context.Context, rr release.RangeReader, ent *release.Entry, raw bool) *stream {
	s := &stream{ctx: ctx, rr: rr, ent: ent, fr: newFrames(ent), raw: raw, size: ent.Size,
		cur: -1, h: sha256.New()}
	if raw {
		s.size = ent.FrameLength
	}
	return s
}

func (s *stream) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	}
	if off < 0 || off > s.size {
		return s.pos, fmt.Errorf("edge: seek to %d outside %d bytes", off, s.size)
	}
	s.pos = off
	return off, nil
}

func (s *stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.cur < 0 || s.pos < s.start || s.pos >= s.start+int64(len(s.buf)) {
		if err := s.load(s.frameAt(s.pos)); err != nil {
			s.err = err
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos-s.start:])
	s.pos += int64(n)
	return n, nil
}

// frameAt returns the frame holding offset pos (< size).
func (s *stream) frameAt(pos int64) int {
	if !s.raw {
		return int(pos / release.ChunkSize)
	}
	return sort.Search(s.fr.count(), func(i int) bool { return s.fr.offs[i+1] > pos })
}

// load reads, decodes and checks frame i and makes it the current one.
func (s *stream) load(i int) error {
	if s.rawb == nil {
		s.rawb, s.decb = getBuf(), getBuf()
	}
	ro, rn := s.fr.raw(i)
	if rn > maxFrame {
		return fmt.Errorf("%w: frame of %d bytes", release.ErrCorrupt, rn)
	}
	if s.src == nil || s.next != i {
		s.closeSrc()
		src, err := s.rr.ReadRange(s.ctx, s.ent.FrameOffset+ro, s.ent.FrameLength-ro)
		if err != nil {
			return err
		}
		s.src, s.next = src, i
	}
	raw := (*s.rawb)[:rn]
	if _, err := io.ReadFull(s.src, raw); err != nil {
		s.closeSrc()
		return fmt.Errorf("read frame %d: %w", i, err)
	}
	s.next++
	dec, err := decodeFrame(raw, *s.decb, s.fr.contentLen(i))
	if err != nil {
		return fmt.Errorf("frame %d of %q: %w", i, s.ent.Path, err)
	}
	if err := s.hash(i, dec); err != nil {
		return err
	}
	s.cur = i
	if s.raw {
		s.buf, s.start = raw, ro
	} else {
		s.buf, s.start = dec, int64(i)*release.ChunkSize
	}
	return nil
}

// hash adds frame i to the content hash while frames come in order, and
// checks the sha256 when the last one arrives.
func (s *stream) hash(i int, dec []byte) error {
	if s.h == nil {
		return nil
	}
	if i != s.hashed {
		s.h = nil
		return nil
	}
	s.h.Write(dec)
	if s.hashed++; s.hashed < s.fr.count() {
		return nil
	}
	want, _ := hex.DecodeString(s.ent.SHA256)
	if !bytes.Equal(s.h.Sum(nil), want) {
		return fmt.Errorf("%w: content of %q does not match its sha256", release.ErrCorrupt, s.ent.Path)
	}
	s.h = nil
	return nil
}

func (s *stream) closeSrc() {
	if s.src != nil {
		s.src.Close()
		s.src = nil
	}
}

// Close releases the reader and the buffers.
func (s *stream) Close() error {
	s.closeSrc()
	if s.rawb != nil {
		putBuf(s.rawb)
		putBuf(s.decb)
		s.rawb, s.decb, s.buf = nil, nil, nil
	}
	if s.err == nil {
		s.err = errors.New("edge: stream closed")
	}
	return nil
}
