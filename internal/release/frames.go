package release

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// newEncoder returns an encoder with the fixed settings of the format. Each
// frame is compressed on its own with EncodeAll, so the output does not
// depend on which goroutine or how many of them compress it.
func newEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithLowerEncoderMem(false),
		zstd.WithZeroFrames(false))
	if err != nil {
		panic(err) // only on invalid options
	}
	return enc
}

type frameJob struct {
	data []byte
	out  []byte
	done chan struct{}
}

// packer turns a sorted entry list into data frames compressed in parallel
// and written in order.
type packer struct {
	ctx    context.Context
	cancel context.CancelFunc
	w      io.Writer
	tw     *tar.Writer
	cur    []byte    // the frame being filled
	tree   hash.Hash // of the uncompressed tar stream
	tarLen int64
	nframe int // frames cut so far
	locs   []loc

	jobs  chan *frameJob // to compressors
	order chan *frameJob // to the writer, in frame order
	lens  []int64        // compressed length of each frame, set by the writer
	art   hash.Hash
	size  int64
	werr  error
	wdone chan struct{}
	wg    sync.WaitGroup
}

func newPacker(ctx context.Context, w io.Writer, workers int) *packer {
	ctx, cancel := context.WithCancel(ctx)
	p := &packer{ctx: ctx, cancel: cancel, w: w, tree: sha256.New(), art: sha256.New(),
		jobs: make(chan *frameJob, workers), order: make(chan *frameJob, 2*workers),
		wdone: make(chan struct{})}
	p.tw = tar.NewWriter(p)
	for range workers {
		p.wg.Add(1)
		go p.compress()
	}
	go p.write()
	return p
}

// Write receives the tar stream from tw.
func (p *packer) Write(b []byte) (int, error) {
	p.cur = append(p.cur, b...)
	p.tree.Write(b)
	p.tarLen += int64(len(b))
	return len(b), nil
}

// cut closes the current frame, if it holds anything, and hands it on.
func (p *packer) cut() error {
	if len(p.cur) == 0 {
		return nil
	}
	j := &frameJob{data: p.cur, done: make(chan struct{})}
	p.cur = make([]byte, 0, GroupSize+SmallFile)
	p.nframe++
	select {
	case p.order <- j:
	case <-p.ctx.Done():
		return p.err()
	}
	select {
	case p.jobs <- j:
	case <-p.ctx.Done():
		return p.err()
	}
	return nil
}

func (p *packer) err() error {
	select {
	case <-p.wdone:
		if p.werr != nil {
			return p.werr
		}
	default:
	}
	return p.ctx.Err()
}

func (p *packer) compress() {
	defer p.wg.Done()
	enc := newEncoder()
	for j := range p.jobs {
		j.out = enc.EncodeAll(j.data, make([]byte, 0, len(j.data)/2+64))
		j.data = nil
		close(j.done)
	}
}

func (p *packer) write() {
	defer close(p.wdone)
	for j := range p.order {
		select {
		case <-j.done:
		case <-p.ctx.Done():
			p.werr = p.ctx.Err()
			return
		}
		if _, err := p.w.Write(j.out); err != nil {
			p.werr = err
			p.cancel()
			return
		}
		p.art.Write(j.out)
		p.size += int64(len(j.out))
		p.lens = append(p.lens, int64(len(j.out)))
	}
}

// loc records which frames hold an entry's content.
type loc struct{ first, n int }

func (p *packer) run(src []srcEntry, progress func(int64)) (*Result, error) {
	defer p.cancel()
	res, err := p.pack(src, progress)
	close(p.jobs)
	p.wg.Wait()
	if err == nil {
		close(p.order)
		<-p.wdone
		if p.werr != nil {
			return nil, p.werr
		}
		return p.finish(res)
	}
	p.cancel()
	return nil, err
}

func (p *packer) pack(src []srcEntry, progress func(int64)) (*TOC, error) {
	toc := &TOC{Version: FormatVersion, Entries: make([]Entry, len(src))}
	locs := make([]loc, len(src))
	for i := range src {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		e := &src[i].Entry
		if err := p.tw.WriteHeader(tarHeader(e)); err != nil {
			return nil, err
		}
		if e.Type == TypeFile {
			if err := p.content(&src[i], &locs[i], progress); err != nil {
				return nil, err
			}
		}
		toc.Entries[i] = *e
	}
	if err := p.tw.Close(); err != nil {
		return nil, err
	}
	if err := p.cut(); err != nil {
		return nil, err
	}
	toc.TreeSHA256 = hex.EncodeToString(p.tree.Sum(nil))
	toc.TarLength = p.tarLen
	p.locs = locs
	return toc, nil
}

func (p *packer) content(s *srcEntry, l *loc, progress func(int64)) error {
	e := &s.Entry
	shared := e.Size < SmallFile
	if !shared {
		if err := p.cut(); err != nil {
			return err
		}
	}
	l.first = p.nframe
	e.InFrame = int64(len(p.cur))
	sum, err := readContent(s.abs, e.Size, ChunkSize, func(b []byte) error {
		if _, err := p.tw.Write(b); err != nil {
			return err
		}
		if progress != nil {
			progress(int64(len(b)))
		}
		if shared {
			return nil
		}
		return p.cut()
	})
	if err != nil {
		return err
	}
	e.SHA256 = sum
	if e.Size == 0 {
		return nil
	}
	e.Shared = shared
	if shared {
		l.n = 1
		if len(p.cur) >= GroupSize {
			return p.cut()
		}
		return nil
	}
	e.InFrame = 0
	l.n = p.nframe - l.first
	return nil
}

// finish resolves frame indexes to offsets and writes the TOC and footer.
func (p *packer) finish(toc *TOC) (*Result, error) {
	offs := make([]int64, len(p.lens)+1)
	for i, n := range p.lens {
		offs[i+1] = offs[i] + n
	}
	for i := range toc.Entries {
		e, l := &toc.Entries[i], p.locs[i]
		if e.Type != TypeFile || e.Size == 0 {
			continue
		}
		e.FrameOffset = offs[l.first]
		e.FrameLength = offs[l.first+l.n] - e.FrameOffset
		if l.n > 1 {
			e.Chunks = append([]int64(nil), p.lens[l.first:l.first+l.n]...)
		}
	}
	toc.DataLength = p.size
	frame, err := encodeTOC(toc)
	if err != nil {
		return nil, err
	}
	tail := append(frame, encodeFooter(Footer{Version: FormatVersion, TOCOffset: p.size, TOCLength: int64(len(frame))})...)
	if _, err := p.w.Write(tail); err != nil {
		return nil, err
	}
	p.art.Write(tail)
	toc.buildIndex()
	return &Result{SHA256: hex.EncodeToString(p.art.Sum(nil)), Size: p.size + int64(len(tail)), TOC: toc}, nil
}
