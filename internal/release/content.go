package release

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"syscall"
)

const blockSize = 512

// content lays out the content of entry i: a small file's (read by the
// walk) into the current shared frame, a larger one's into frames of its own
// (through dedupFile up to dedupMax). A file that is shorter or longer than
// its scanned size fails the pack.
func (p *packer) content(i int, src *srcEntry, progress func(int64)) error {
	e, l := &p.entries[i], &p.locs[i]
	if e.Size < SmallFile {
		l.first, l.n = p.nframe, 1
		e.Shared, e.InFrame = true, int64(len(p.cur.data))
		start := len(p.cur.data)
		p.cur.data = append(p.cur.data, src.data...)
		putBuf(&smallBufs, src.data)
		src.data = nil
		p.tarLen += e.Size
		p.cur.spans = append(p.cur.spans, span{entry: i, start: start, end: len(p.cur.data)})
		if progress != nil {
			progress(e.Size)
		}
		if len(p.cur.data) >= GroupSize {
			return p.cut()
		}
		return nil
	}
	abs := src.abs
	f, err := openFile(abs)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := p.cut(); err != nil {
		return err
	}
	l.first = p.nframe
	if e.Size <= dedupMax {
		err = p.dedupFile(i, f, abs, progress)
	} else {
		err = p.ownFrames(i, f, abs, progress)
	}
	if err != nil {
		return err
	}
	l.n = p.nframe - l.first
	if k, _ := f.Read(make([]byte, 1)); k != 0 {
		return fmt.Errorf("%s grew while packing", abs)
	}
	return nil
}

// ownFrames sends a large file's chunks to the compressors as they are read.
func (p *packer) ownFrames(i int, f srcFile, abs string, progress func(int64)) error {
	fh := &fileHash{h: sha256.New()}
	for left := p.entries[i].Size; left > 0; {
		j, err := p.readChunk(i, f, abs, &left, progress)
		if err != nil {
			return err
		}
		fh.add(j)
		if err := p.send(j); err != nil {
			return err
		}
	}
	return nil
}

// readChunk reads the next chunk of a file into a new frame job.
func (p *packer) readChunk(i int, f srcFile, abs string, left *int64, progress func(int64)) (*frameJob, error) {
	j := &frameJob{data: getBuf(&chunkBufs, ChunkSize)[:min(ChunkSize, *left)], chunk: i, done: make(chan struct{})}
	if err := readFull(f, j.data, abs); err != nil {
		putBuf(&chunkBufs, j.data)
		return nil, err
	}
	*left -= int64(len(j.data))
	j.last = *left == 0
	p.tarLen += int64(len(j.data))
	if progress != nil {
		progress(int64(len(j.data)))
	}
	return j, nil
}

func readFull(f srcFile, b []byte, name string) error {
	if _, err := io.ReadFull(f, b); err != nil {
		return fmt.Errorf("%s changed while packing: %w", name, err)
	}
	return nil
}

// srcFile is a tree file open for reading: a bare descriptor, with neither
// the runtime poller nor an *os.File (and its fcntl and cleanup) per file.
type srcFile int

// openFile opens a regular file for reading. The walk saw a regular file
// there; if it was replaced since, a fifo must not block the pack forever
// (O_NONBLOCK: the read then finds it short) and a symlink must not be
// followed out of the tree (O_NOFOLLOW). Both flags change nothing for a
// regular file.
func openFile(name string) (srcFile, error) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return srcFile(fd), nil
}

func (f srcFile) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f srcFile) Close() error { return syscall.Close(int(f)) }
