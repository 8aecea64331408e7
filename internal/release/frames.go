package release

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/semaphore"
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

// span is a file's content inside a shared frame, hashed by a compressor.
type span struct {
	entry      int
	start, end int
	sum        [sha256.Size]byte
}

// fileSum is the content digest of an entry, collected by the writer.
type fileSum struct {
	entry int
	sum   [sha256.Size]byte
}

type frameJob struct {
	data  []byte
	out   []byte
	spans []span // shared frame: contents to hash
	chunk int    // own frames: index of the entry (-1 if none)
	last  bool   // own frames: the file's last chunk
	done  chan struct{}
	// weight is what the frame holds of the in-flight budget.
	weight int64

	// Own frames: the file's digest on its last chunk, computed by the
	// compressors (fh) unless the producer did. See dedup.go for the rest.
	sum      [sha256.Size]byte
	fh       *fileHash
	after    <-chan struct{} // closed once the file's previous chunk is hashed
	hashDone chan struct{}
	keep     *kept // the writer keeps a copy of out for reuse
	borrowed bool  // out is another frame's kept copy

	// A run of stored frames (Assemble): the writer copies them from run,
	// of these compressed lengths, and closes it.
	run     io.ReadCloser
	runLens []int64
}

// fileHash is the running digest of a large file's content. Its chunks go
// to whichever compressor is free, and each hashes its chunk once the one
// before it is hashed, then compresses it; the compressor of the next chunk,
// which took it later, seldom waits. On the writer, the hashing would hold
// up every frame behind it and leave compressors idle.
type fileHash struct {
	h    hash.Hash
	prev chan struct{} // the hashDone of the chunk handed on last
}

// add makes j, the next chunk of the file, hashed after the one before.
func (fh *fileHash) add(j *frameJob) {
	j.fh, j.after, j.hashDone = fh, fh.prev, make(chan struct{})
	fh.prev = j.hashDone
}

// hash adds j's chunk to the file's digest, in the file's order; it runs
// on a compressor before j is compressed, so j.sum is set once j is done.
func (j *frameJob) hash() {
	if j.after != nil {
		<-j.after // handed to a compressor before j: it never waits for j
	}
	j.fh.h.Write(j.data)
	if j.last {
		j.fh.h.Sum(j.sum[:0])
	}
	close(j.hashDone)
}

// packer turns a walked tree into data frames compressed in parallel and
// written in order. The producer (pack, content.go) reads files and lays out
// the tar stream; compressors hash contents and compress frames; the writer
// writes frames in order.
type packer struct {
	ctx     context.Context
	cancel  context.CancelFunc
	w       io.Writer
	entries []Entry
	cur     *frameJob // the frame being filled
	tarLen  int64
	nframe  int // frames cut so far
	locs    []loc

	jobs      chan *frameJob      // to compressors
	inflight  *semaphore.Weighted // bytes of the frames not yet written
	budget    int64               // the capacity of inflight
	links     int                 // symlinks packed, to check once the tree is known
	rootfs    bool                // a rootfs release (KindRootfs)
	order     chan *frameJob      // to the writer, in frame order
	lens      []int64             // compressed length of each frame, set by the writer
	kept      map[int64][]*kept   // files whose frames may be reused, by size (producer)
	keptBytes int64               // compressed bytes kept (writer)
	sums      []fileSum           // content digests, set by the writer
	copyBuf   []byte              // the writer's buffer for runs of stored frames
	art       hash.Hash
	size      int64
	werr      error
	wdone     chan struct{}
	wg        sync.WaitGroup
}

func newPacker(ctx context.Context, w io.Writer, workers int) *packer {
	ctx, cancel := context.WithCancel(ctx)
	p := &packer{ctx: ctx, cancel: cancel, w: w, art: sha256.New(),
		jobs: make(chan *frameJob, workers), order: make(chan *frameJob, 256),
		budget: inflightBytes(workers), inflight: semaphore.NewWeighted(inflightBytes(workers)),
		kept:  map[int64][]*kept{},
		wdone: make(chan struct{})}
	p.cur = p.newJob()
	for range workers {
		p.wg.Add(1)
		go p.compress()
	}
	go p.write()
	return p
}

// inflightBytes bounds the uncompressed bytes of the frames handed on but not
// yet written: two chunks per compressor and two more, so that every
// compressor has work while the writer waits for the frame at the head.
func inflightBytes(workers int) int64 { return int64(workers+2) * inflightChunks * ChunkSize }

// inflightChunks is 2 but in tests, which shrink the budget to reach it
// with smaller trees. It must stay above MaxShared plus one entry.
var inflightChunks int64 = 2

func (p *packer) newJob() *frameJob {
	return &frameJob{data: getBuf(&groupBufs, GroupSize+SmallFile+4096)[:0], chunk: -1, done: make(chan struct{})}
}

// emit appends tar stream bytes to the current frame.
func (p *packer) emit(b []byte) {
	p.cur.data = append(p.cur.data, b...)
	p.tarLen += int64(len(b))
}

// cut closes the current frame, if it holds anything, and hands it on.
func (p *packer) cut() error {
	if len(p.cur.data) == 0 {
		return nil
	}
	j := p.cur
	p.cur = p.newJob()
	return p.send(j)
}

func (p *packer) send(j *frameJob) error {
	if err := p.enqueue(j); err != nil {
		return err
	}
	select {
	case p.jobs <- j:
	case <-p.ctx.Done():
		return p.err()
	}
	return nil
}

// enqueue hands j to the writer, in frame order, once the frames between
// the producer and the writer hold less than their byte budget. Bounding
// bytes rather than frames lets small frames queue up behind a large one
// still being compressed, so that no compressor waits for the writer. A
// frame never weighs more than the whole budget (a semaphore never grants
// more than its capacity: asking for more waits forever); frames are cut
// well below it anyway (content.go, pack).
func (p *packer) enqueue(j *frameJob) error {
	j.weight = min(max(1, int64(len(j.data)), int64(len(j.out))), p.budget)
	if err := p.inflight.Acquire(p.ctx, j.weight); err != nil {
		return p.err()
	}
	p.nframe++
	select {
	case p.order <- j:
		return nil
	case <-p.ctx.Done():
		return p.err()
	}
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
		if j.fh != nil {
			j.hash()
		}
		j.out = enc.EncodeAll(j.data, getBuf(&outBufs, compressBound(len(j.data)))[:0])
		for k := range j.spans {
			s := &j.spans[k]
			s.sum = sha256.Sum256(j.data[s.start:s.end])
		}
		close(j.done)
	}
}

// compressBound is the most a zstd frame of n input bytes can take (the
// format's ZSTD_COMPRESSBOUND, plus the frame header and checksum), so that
// EncodeAll never grows its output: incompressible binaries, most of a
// root filesystem, made it copy each frame's output about once more.
func compressBound(n int) int { return n + n>>8 + 64 + 32 }

func (p *packer) write() {
	defer close(p.wdone)
	for j := range p.order {
		select {
		case <-j.done:
		case <-p.ctx.Done():
		}
		if err := p.ctx.Err(); err != nil {
			p.werr = err
			return
		}
		if j.run != nil {
			if err := p.copyRun(j); err != nil {
				p.werr = err
				p.cancel()
				return
			}
			p.inflight.Release(j.weight)
			continue
		}
		if _, err := p.w.Write(j.out); err != nil {
			p.werr = err
			p.cancel()
			return
		}
		if j.chunk >= 0 && j.last {
			p.sums = append(p.sums, fileSum{entry: j.chunk, sum: j.sum})
		}
		if j.keep != nil {
			p.keepFrame(j)
		}
		for _, s := range j.spans {
			p.sums = append(p.sums, fileSum{entry: s.entry, sum: s.sum})
		}
		p.art.Write(j.out)
		p.size += int64(len(j.out))
		p.lens = append(p.lens, int64(len(j.out)))
		p.inflight.Release(j.weight)
		j.release()
	}
}

// Buffers are recycled: frames are allocated and dropped at a high rate.
var (
	groupBufs, chunkBufs, outBufs sync.Pool
	zeros                         [2 * blockSize]byte
)

// getBuf returns a pooled buffer with capacity of at least n.
func getBuf(pool *sync.Pool, n int) []byte {
	if b, ok := pool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:cap(*b)]
	}
	return make([]byte, n)
}

func putBuf(pool *sync.Pool, b []byte) {
	if b != nil {
		pool.Put(&b)
	}
}

// release returns a written frame's buffers to their pools.
func (j *frameJob) release() {
	if j.chunk >= 0 {
		putBuf(&chunkBufs, j.data)
	} else {
		putBuf(&groupBufs, j.data)
	}
	if !j.borrowed {
		putBuf(&outBufs, j.out)
	}
	j.data, j.out = nil, nil
}

// loc records which frames hold an entry's content.
type loc struct{ first, n int }

// walkFunc calls its argument with each entry of a tree, in path order.
type walkFunc func(func(*srcEntry) error) error

func (p *packer) run(walk walkFunc, progress func(int64)) (*Result, error) {
	return p.runWith(func() (*TOC, error) { return p.pack(walk, progress) })
}

// runWith runs the packer with produce laying out the frames and
// answering the TOC (without offsets and digests of contents it did not
// hash), then writes the TOC and footer.
func (p *packer) runWith(produce func() (*TOC, error)) (*Result, error) {
	defer p.cancel()
	toc, err := produce()
	if err != nil {
		p.cancel() // the compressors drain, the writer stops
	}
	// Every goroutine of the pack ends before it returns.
	close(p.jobs)
	p.wg.Wait()
	close(p.order)
	<-p.wdone
	for j := range p.order { // left by a writer that stopped
		if j.run != nil {
			j.run.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	if p.werr != nil {
		return nil, p.werr
	}
	return p.finish(toc)
}

// pack lays out the tar stream of the walked entries. Only this goroutine
// touches p.entries until the writer is done: compressors and the writer
// report digests through frame jobs and p.sums.
func (p *packer) pack(walk walkFunc, progress func(int64)) (*TOC, error) {
	var hdr bytes.Buffer
	p.entries = []Entry{} // an empty tree's TOC has "entries":[]
	err := walk(func(src *srcEntry) error {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		i := len(p.entries)
		p.entries = append(p.entries, src.Entry)
		p.locs = append(p.locs, loc{})
		e := &p.entries[i]
		hdr.Reset()
		// A fresh writer per entry yields just this entry's header blocks
		// (with a PAX header where needed); content and padding are ours.
		if err := tar.NewWriter(&hdr).WriteHeader(tarHeader(e)); err != nil {
			return err
		}
		p.emit(hdr.Bytes())
		if e.Type == TypeSymlink {
			p.links++
		}
		if e.Type != TypeFile || e.Size == 0 {
			// Headers alone (directories, symlinks, empty files, with
			// names up to 4 KiB) close a shared frame at MaxShared, so
			// that no run of them makes a frame without bound.
			if len(p.cur.data) >= MaxShared {
				return p.cut()
			}
			return nil
		}
		if err := p.content(i, src, progress); err != nil {
			return err
		}
		p.emit(zeros[:(blockSize-e.Size%blockSize)%blockSize])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.links > 0 && !p.rootfs { // a rootfs's links may point anywhere: its unpacker confines them
		t, err := linkTree(p.entries)
		if err == nil {
			err = checkLinks(t)
		}
		if err != nil {
			return nil, err
		}
	}
	p.emit(zeros[:2*blockSize])
	if err := p.cut(); err != nil {
		return nil, err
	}
	toc := &TOC{Version: FormatVersion, TarLength: p.tarLen, Entries: p.entries}
	if p.rootfs {
		toc.Kind = KindRootfs
	}
	return toc, nil
}

// finish resolves frame indexes to offsets and writes the TOC and footer.
func (p *packer) finish(toc *TOC) (*Result, error) {
	for _, s := range p.sums {
		toc.Entries[s.entry].SHA256 = hex.EncodeToString(s.sum[:])
	}
	offs := make([]int64, len(p.lens)+1)
	for i, n := range p.lens {
		offs[i+1] = offs[i] + n
	}
	for i := range toc.Entries {
		e, l := &toc.Entries[i], p.locs[i]
		if e.Type != TypeFile {
			continue
		}
		if e.Size == 0 {
			e.SHA256 = emptySHA256
			continue
		}
		e.FrameOffset = offs[l.first]
		e.FrameLength = offs[l.first+l.n] - e.FrameOffset
		if l.n > 1 {
			e.Chunks = append([]int64(nil), p.lens[l.first:l.first+l.n]...)
		}
	}
	toc.DataLength = p.size
	toc.TreeSHA256 = toc.Digest()
	frame, err := encodeTOC(toc)
	if err != nil {
		return nil, err
	}
	var flags uint32
	if toc.Kind == KindRootfs {
		flags = FlagRootfs
	}
	tail := append(frame, encodeFooter(Footer{Version: FormatVersion, Flags: flags, TOCOffset: p.size, TOCLength: int64(len(frame))})...)
	if _, err := p.w.Write(tail); err != nil {
		return nil, err
	}
	p.art.Write(tail)
	toc.buildIndex()
	return &Result{SHA256: hex.EncodeToString(p.art.Sum(nil)), Size: p.size + int64(len(tail)), TOC: toc}, nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// TreeDigest is the digest of the canonical uncompressed tree: sha256 over
// one line per entry, in path order, "type mode size sha256 path\x00link\n"
// (mode in octal, sha256 empty for non-files). It depends on the tree only,
// not on the compressor, so it can check a release re-packed by a later
// format or compressor version.
func TreeDigest(entries []Entry) string {
	h := sha256.New()
	var line []byte
	for _, e := range entries {
		line = append(line[:0], e.Type...)
		line = strconv.AppendUint(append(line, ' '), uint64(e.Mode), 8)
		line = strconv.AppendInt(append(line, ' '), e.Size, 10)
		line = append(append(line, ' '), e.SHA256...)
		line = append(append(line, ' '), e.Path...)
		line = append(append(line, 0), e.Link...)
		h.Write(append(line, '\n'))
	}
	return hex.EncodeToString(h.Sum(nil))
}
