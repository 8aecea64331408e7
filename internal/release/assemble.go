package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
)

// StoredRef is where a stored release holds a frame: its compressed bytes
// [Offset, Offset+Length) of the artifact Release (a hex sha256).
type StoredRef struct {
	Release        string
	Offset, Length int64
}

// Source gives Assemble what it does not compute itself.
type Source interface {
	// Stored answers where a stored release holds a frame of input k.
	Stored(k FrameKey) (StoredRef, bool)
	// ReadStored opens the compressed bytes [off, off+n) of release rel.
	ReadStored(ctx context.Context, rel string, off, n int64) (io.ReadCloser, error)
	// Open opens the content of file e (e.SHA256, e.Size bytes). Assemble
	// checks what it reads against e.SHA256 (ErrCorrupt).
	Open(ctx context.Context, e *Entry) (io.ReadCloser, error)
}

// maxRun bounds the compressed bytes of adjacent stored frames read at once.
const maxRun = 64 << 20

// Assemble packs the tree described by entries (sorted by path, files with
// their size and content sha256; modes as a static release keeps them) into
// w. The artifact is byte-identical to PackDir of that tree: a frame whose
// input equals a stored frame (src.Stored, by FrameKey) is copied
// compressed, adjacent ones of one release in one ranged read; the others
// are compressed from contents src.Open gives. A large file's frames are
// copied only if all of them are stored. Result.Reused counts the
// compressed bytes copied. Entries are checked as PackDir checks a tree:
// names, limits, symlinks leaving the tree (ErrInvalid, ErrTooLarge).
func Assemble(ctx context.Context, entries []Entry, w io.Writer, src Source, opts PackOptions) (*Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	entries = slices.Clone(entries)
	if err := checkEntries(entries, opts.Limits); err != nil {
		return nil, err
	}
	pl, err := planFrames(entries)
	if err != nil {
		return nil, err
	}
	refs := resolve(pl, src)
	p := newPacker(ctx, w, opts.Concurrency)
	p.entries, p.locs, p.tarLen = entries, pl.locs, pl.tarLen
	var reused int64
	res, err := p.runWith(func() (*TOC, error) {
		a := assembler{p: p, pl: pl, src: src, refs: refs, progress: opts.Progress}
		if err := a.run(); err != nil {
			return nil, err
		}
		reused = a.reused
		return &TOC{Version: FormatVersion, TarLength: pl.tarLen, Entries: p.entries}, nil
	})
	if err != nil {
		return nil, err
	}
	res.Reused = reused
	return res, nil
}

// checkEntries checks a tree given by its entries as walking it on disk
// does, and sets each file's content type.
func checkEntries(entries []Entry, lim Limits) error {
	if lim.MaxFiles > 0 && int64(len(entries)) > lim.MaxFiles {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxFiles)
	}
	var total, names int64
	links := false
	for i := range entries {
		e := &entries[i]
		if i > 0 && entries[i-1].Path >= e.Path {
			return invalidf("entries not sorted by path at %q", e.Path)
		}
		if err := checkName(e.Path); err != nil {
			return err
		}
		switch e.Type {
		case TypeFile:
			e.Mode, e.ContentType = fileMode(e.Mode), ContentType(e.Path)
			if e.Size < 0 || !isHexSHA(e.SHA256) {
				return invalidf("file %q without a size and sha256", e.Path)
			}
		case TypeDir:
			e.Mode = 0o755
		case TypeSymlink:
			e.Mode, links = 0o777, true
			if err := CheckLink(e.Path, e.Link); err != nil {
				return err
			}
		default:
			return invalidf("%q is not a regular file, directory or symlink", e.Path)
		}
		if total += e.Size; lim.MaxBytes > 0 && total > lim.MaxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
		}
		if names += int64(len(e.Path) + len(e.Link)); names > maxNameBytes {
			return fmt.Errorf("%w: more than %d bytes of names and link targets", ErrTooLarge, maxNameBytes)
		}
	}
	if links {
		t, err := linkTree(entries)
		if err == nil {
			err = checkLinks(t)
		}
		return err
	}
	return nil
}

// resolve looks up the stored place of each frame; a large file's frames
// are all stored or none is.
func resolve(pl *plan, src Source) []*StoredRef {
	refs := make([]*StoredRef, len(pl.frames))
	for k, f := range pl.frames {
		if ref, ok := src.Stored(f.key); ok {
			refs[k] = &ref
		}
	}
	for k := 0; k < len(pl.frames); {
		own := pl.frames[k].own
		if own < 0 {
			k++
			continue
		}
		l := pl.locs[own]
		all := true
		for c := l.first; c < l.first+l.n; c++ {
			all = all && refs[c] != nil
		}
		if !all {
			clear(refs[l.first : l.first+l.n])
		}
		k = l.first + l.n
	}
	return refs
}

// assembler feeds the packer the frames of a plan.
type assembler struct {
	p        *packer
	pl       *plan
	src      Source
	refs     []*StoredRef
	progress func(int64)
	reused   int64

	// The large file being read, over its frames.
	file   int
	rc     io.ReadCloser
	h      hash.Hash
	offset int64
}

func (a *assembler) run() error {
	defer a.closeFile()
	for k := 0; k < len(a.pl.frames); {
		if err := a.p.ctx.Err(); err != nil {
			return a.p.err()
		}
		if a.refs[k] == nil {
			if err := a.compress(k); err != nil {
				return err
			}
			k++
			continue
		}
		// A run of frames adjacent in one stored release: one ranged read.
		first, end := a.refs[k], k+1
		total := first.Length
		for end < len(a.refs) && a.refs[end] != nil && a.refs[end].Release == first.Release &&
			a.refs[end].Offset == first.Offset+total && total+a.refs[end].Length <= maxRun {
			total += a.refs[end].Length
			end++
		}
		if err := a.copyRun(k, end, total); err != nil {
			return err
		}
		k = end
	}
	return nil
}

// copyRun hands the writer frames [from, to), total compressed bytes read
// in one ranged read, which it copies as they are (packer.copyRun).
func (a *assembler) copyRun(from, to int, total int64) error {
	first := a.refs[from]
	rc, err := a.src.ReadStored(a.p.ctx, first.Release, first.Offset, total)
	if err != nil {
		return err
	}
	j := &frameJob{chunk: -1, done: make(chan struct{}), run: rc}
	for k := from; k < to; k++ {
		j.runLens = append(j.runLens, a.refs[k].Length)
		a.reused += a.refs[k].Length
		if a.progress != nil {
			a.progress(a.pl.frames[k].size)
		}
	}
	close(j.done)
	a.p.nframe += to - from - 1 // enqueue counts one
	if err := a.p.enqueue(j); err != nil {
		rc.Close()
		return err
	}
	return nil
}

// copyRun writes a run of stored frames: it runs on the writer.
func (p *packer) copyRun(j *frameJob) error {
	defer j.run.Close()
	if p.copyBuf == nil {
		p.copyBuf = make([]byte, 256<<10)
	}
	w := io.MultiWriter(p.w, p.art)
	for _, n := range j.runLens {
		if got, err := io.CopyBuffer(w, io.LimitReader(j.run, n), p.copyBuf); err != nil || got != n {
			return fmt.Errorf("copying a stored frame of %d bytes: %d copied, %v", n, got, err)
		}
		p.size += n
		p.lens = append(p.lens, n)
	}
	return nil
}

// compress builds frame k's input and hands it to the compressors.
func (a *assembler) compress(k int) error {
	f := &a.pl.frames[k]
	j := &frameJob{chunk: -1, done: make(chan struct{})}
	j.data = getBuf(&chunkBufs, int(f.size))[:0]
	for _, pc := range f.pieces {
		if pc.raw != nil {
			j.data = append(j.data, pc.raw...)
			continue
		}
		var err error
		if j.data, err = a.content(j.data, pc); err != nil {
			putBuf(&chunkBufs, j.data)
			return err
		}
	}
	if a.progress != nil {
		a.progress(f.size)
	}
	return a.p.send(j)
}

// content appends bytes [pc.off, pc.off+pc.n) of an entry's content to b;
// contents are read in order, and checked against their sha256 at their end.
func (a *assembler) content(b []byte, pc piece) ([]byte, error) {
	e := &a.p.entries[pc.entry]
	if a.rc == nil || a.file != pc.entry || a.offset != pc.off {
		a.closeFile()
		if pc.off != 0 {
			return b, fmt.Errorf("assemble: content of %q read from %d", e.Path, pc.off)
		}
		rc, err := a.src.Open(a.p.ctx, e)
		if err != nil {
			return b, err
		}
		a.rc, a.file, a.h, a.offset = rc, pc.entry, sha256.New(), 0
	}
	start := len(b)
	b = b[:start+int(pc.n)]
	if _, err := io.ReadFull(a.rc, b[start:]); err != nil {
		return b[:start], fmt.Errorf("content %s of %q: %w", e.SHA256, e.Path, err)
	}
	a.h.Write(b[start:])
	a.offset += pc.n
	if a.offset == e.Size {
		got := hex.EncodeToString(a.h.Sum(nil))
		a.closeFile()
		if got != e.SHA256 {
			return b[:start], corruptf("content of %q has sha256 %s, not %s", e.Path, got, e.SHA256)
		}
	}
	return b, nil
}

func (a *assembler) closeFile() {
	if a.rc != nil {
		a.rc.Close()
		a.rc = nil
	}
}
