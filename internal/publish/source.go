package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// maxFrameSources bounds the stored releases whose TOCs an assembly reads
// to find frames it can copy: the deployment's active release and those
// that hold the most contents of the tree.
const maxFrameSources = 4

// sharedCache is how many decompressed shared frames a source keeps: the
// contents of a frame that is compressed again are read in path order, as
// the stored frames hold them, so a few frames serve every small file.
const sharedCache = 4

// storedSource gives release.Assemble the frames and contents of an
// incremental publish: uploaded parts, and stored releases read with ranged
// reads under GC leases that last until close.
type storedSource struct {
	p      *Publisher
	inc    *Incremental
	frames map[release.FrameKey]release.StoredRef
	drops  map[string]func()
	shared []sharedFrame // most recent last
	// active is the deployment's active release, if its TOC was read.
	active *release.Result
}

type sharedFrame struct {
	rel  string
	off  int64
	data []byte
}

func newStoredSource(p *Publisher, inc *Incremental) *storedSource {
	return &storedSource{p: p, inc: inc, frames: map[release.FrameKey]release.StoredRef{}, drops: map[string]func(){}}
}

func (s *storedSource) close() {
	for _, drop := range s.drops {
		drop()
	}
}

// hold takes a GC lease on release rel for the rest of the assembly.
func (s *storedSource) hold(ctx context.Context, rel string) error {
	if _, held := s.drops[rel]; held {
		return nil
	}
	drop, err := lease.Hold(ctx, s.p.Meta, rel)
	if err != nil {
		return err
	}
	s.drops[rel] = drop
	return nil
}

// loadActive reads the TOC of the deployment's active release, if it is a
// static release of this format version. One that cannot be read costs
// only its reuse: it is logged and skipped.
func (s *storedSource) loadActive(ctx context.Context, dep *meta.Deployment) error {
	if dep.ActiveVersionID == nil {
		return nil
	}
	v, err := s.p.Meta.GetVersion(ctx, *dep.ActiveVersionID)
	if err != nil || v.ArtifactSHA256 == "" {
		return ctx.Err()
	}
	toc, size, err := s.readTOC(ctx, v.ArtifactSHA256)
	switch {
	case err != nil:
		s.warn(v.ArtifactSHA256, err)
		return ctx.Err()
	case toc != nil && toc.Version == release.FormatVersion:
		s.active = &release.Result{SHA256: v.ArtifactSHA256, Size: size, TOC: toc}
	}
	return nil
}

// loadFrames reads the TOCs of the releases most likely to hold frames of
// the tree: the active one (loadActive), then those the content index
// names for the most contents. A release that cannot be read costs only
// its reuse: it is logged and skipped.
func (s *storedSource) loadFrames(ctx context.Context) error {
	count := map[string]int{}
	for _, c := range s.inc.have {
		count[c.ReleaseSHA256]++
	}
	var rels []string
	for rel := range count {
		rels = append(rels, rel)
	}
	sort.Slice(rels, func(i, j int) bool {
		if count[rels[i]] != count[rels[j]] {
			return count[rels[i]] > count[rels[j]]
		}
		return rels[i] < rels[j]
	})
	seen := map[string]bool{}
	if s.active != nil {
		seen[s.active.SHA256] = true
		s.addFrames(s.active.SHA256, s.active.TOC)
	}
	for _, rel := range rels {
		if len(seen) == maxFrameSources {
			break
		}
		if seen[rel] {
			continue
		}
		seen[rel] = true
		toc, _, err := s.readTOC(ctx, rel)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.warn(rel, err)
			continue
		}
		if toc != nil {
			s.addFrames(rel, toc)
		}
	}
	return nil
}

func (s *storedSource) warn(rel string, err error) {
	if s.p.Log != nil {
		s.p.Log.Warn("read stored frames", "release", rel, "err", err)
	}
}

// readTOC reads the TOC of static release rel under a lease; nil if it is
// not a static release or was collected.
func (s *storedSource) readTOC(ctx context.Context, rel string) (*release.TOC, int64, error) {
	r, err := s.p.Meta.GetRelease(ctx, rel)
	if err != nil {
		return nil, 0, err
	}
	if r.Kind != meta.KindStatic && r.Kind != meta.KindSource || r.CollectedAt != nil {
		return nil, 0, nil // a source snapshot is in the static format too
	}
	if err := s.hold(ctx, rel); err != nil {
		return nil, 0, err
	}
	if t := s.p.tocs.get(rel); t != nil && t.size == r.SizeBytes {
		return t.toc, t.size, nil
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, rel)
	toc, err := release.ReadTOC(ctx, release.RangeFunc(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return s.p.Blobs.Open(ctx, d, off, n)
	}), r.SizeBytes)
	if err != nil {
		return nil, 0, err
	}
	s.p.tocs.put(rel, r.SizeBytes, toc)
	return toc, r.SizeBytes, nil
}

func (s *storedSource) addFrames(rel string, toc *release.TOC) {
	t := s.p.tocs.get(rel)
	if t == nil || t.toc != toc {
		t = &cachedTOC{rel: rel, toc: toc}
	}
	for _, f := range t.storedFrames() {
		if _, ok := s.frames[f.Key]; !ok {
			s.frames[f.Key] = release.StoredRef{Release: rel, Offset: f.Offset, Length: f.Length}
		}
	}
}

// Stored: see release.Source.
func (s *storedSource) Stored(k release.FrameKey) (release.StoredRef, bool) {
	ref, ok := s.frames[k]
	return ref, ok
}

// ReadStored: see release.Source.
func (s *storedSource) ReadStored(ctx context.Context, rel string, off, n int64) (io.ReadCloser, error) {
	return s.p.Blobs.Open(ctx, digest.NewDigestFromEncoded(digest.SHA256, rel), off, n)
}

// Open gives the content of e: its uploaded part, or its bytes in the
// stored release the content index names. release.Assemble checks them.
func (s *storedSource) Open(ctx context.Context, e *release.Entry) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(s.inc.stage, "parts", e.SHA256))
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	c, ok := s.inc.have[e.SHA256]
	if !ok {
		return nil, refuse(ErrContentsMissing, "content %s of %q was not uploaded", e.SHA256, e.Path)
	}
	if err := s.hold(ctx, c.ReleaseSHA256); err != nil {
		return nil, err
	}
	if c.Shared {
		frame, err := s.sharedFrame(ctx, c)
		if err != nil {
			return nil, err
		}
		if c.InFrame+c.Size > int64(len(frame)) {
			return nil, fmt.Errorf("release %s: content %s past its frame: %w", c.ReleaseSHA256, c.SHA256, release.ErrCorrupt)
		}
		return io.NopCloser(bytes.NewReader(frame[c.InFrame : c.InFrame+c.Size])), nil
	}
	rc, err := s.ReadStored(ctx, c.ReleaseSHA256, c.FrameOffset, c.FrameLength)
	if err != nil {
		return nil, fmt.Errorf("read content %s from release %s: %w", c.SHA256, c.ReleaseSHA256, err)
	}
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1))
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &zstdContent{zr: zr, rc: rc}, nil
}

// sharedFrame is the decompressed shared frame that holds content c.
func (s *storedSource) sharedFrame(ctx context.Context, c meta.Content) ([]byte, error) {
	for _, f := range s.shared {
		if f.rel == c.ReleaseSHA256 && f.off == c.FrameOffset {
			return f.data, nil
		}
	}
	rc, err := s.ReadStored(ctx, c.ReleaseSHA256, c.FrameOffset, c.FrameLength)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// A shared frame holds at most MaxShared plus one entry's bytes.
	data, err := io.ReadAll(io.LimitReader(zr, 2*release.MaxShared))
	if err != nil {
		return nil, fmt.Errorf("release %s: frame at %d: %w", c.ReleaseSHA256, c.FrameOffset, err)
	}
	if len(s.shared) == sharedCache {
		s.shared = s.shared[1:]
	}
	s.shared = append(s.shared, sharedFrame{rel: c.ReleaseSHA256, off: c.FrameOffset, data: data})
	return data, nil
}

// zstdContent is a content decompressed from a stored release's own frames.
type zstdContent struct {
	zr *zstd.Decoder
	rc io.ReadCloser
}

func (z *zstdContent) Read(b []byte) (int, error) { return z.zr.Read(b) }

func (z *zstdContent) Close() error {
	z.zr.Close()
	return z.rc.Close()
}

// checkSiteRules checks the root _redirects and _headers as
// siterules.CheckDir checks them on disk.
func (s *storedSource) checkSiteRules(ctx context.Context, entries []release.Entry, o siterules.Options) error {
	var data [2][]byte
	for i, name := range [...]string{siterules.RedirectsFile, siterules.HeadersFile} {
		k := sort.Search(len(entries), func(k int) bool { return entries[k].Path >= name })
		if k == len(entries) || entries[k].Path != name {
			continue
		}
		e := &entries[k]
		switch {
		case e.Type == release.TypeDir:
			continue // a directory of that name is just served
		case e.Type != release.TypeFile:
			return fmt.Errorf("%w: %s must be a regular file", siterules.ErrInvalid, name)
		case e.Size > siterules.MaxFileBytes:
			return fmt.Errorf("%w: %s is larger than %d bytes", siterules.ErrInvalid, name, siterules.MaxFileBytes)
		case e.Size == 0:
			continue
		}
		rc, err := s.Open(ctx, e)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(rc, e.Size))
		rc.Close()
		if err != nil {
			return err
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != e.SHA256 {
			return fmt.Errorf("%s: content is not %s: %w", name, e.SHA256, release.ErrCorrupt)
		}
		data[i] = b
	}
	return siterules.Check(data[0], data[1], o)
}
