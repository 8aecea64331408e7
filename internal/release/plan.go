package release

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// A frame's input is a function of the entries of the tree alone: the tar
// headers and paddings follow from paths, types, modes, sizes and link
// targets, and the contents are named by their sha256. planFrames lays out
// the data frames of a tree from its entries, exactly as the packer cuts
// them (docs/format.md, "Data frames and the tar stream"), without reading
// any content; each frame gets a key, the digest of its input, so that a
// frame of a new tree equal to a frame of a stored release is found and
// copied compressed instead of compressed again (Assemble).

// FrameKey names a data frame's uncompressed input: sha256 over its pieces,
// the raw bytes of headers and paddings and the (sha256, offset, length) of
// the content bytes it holds. Two frames with one key have the same input,
// so the same compressed bytes.
type FrameKey [sha256.Size]byte

// piece is a part of a frame's input: raw bytes, or bytes [off, off+n) of
// the content of entry.
type piece struct {
	raw    []byte
	entry  int
	off, n int64
}

// planned is one data frame of a plan.
type planned struct {
	pieces []piece
	size   int64 // uncompressed bytes
	own    int   // the entry whose content the frame holds alone, or -1
	key    FrameKey
}

// plan is the layout of a tree's tar stream in frames.
type plan struct {
	frames []planned
	locs   []loc // per entry: the frames that hold its content
	tarLen int64
}

// planFrames lays out the frames of entries (sorted by path, with sizes and
// sha256s), setting Shared and InFrame on entries as the packer does.
func planFrames(entries []Entry) (*plan, error) {
	pl := &plan{locs: make([]loc, len(entries))}
	cur := planned{own: -1}
	cut := func() {
		if cur.size > 0 {
			pl.frames = append(pl.frames, cur)
		}
		cur = planned{own: -1}
	}
	raw := func(b []byte) {
		if len(b) == 0 {
			return
		}
		cur.pieces = append(cur.pieces, piece{raw: b})
		cur.size += int64(len(b))
		pl.tarLen += int64(len(b))
	}
	var hdr bytes.Buffer
	for i := range entries {
		e := &entries[i]
		hdr.Reset()
		if err := tar.NewWriter(&hdr).WriteHeader(tarHeader(e)); err != nil {
			return nil, err
		}
		raw(bytes.Clone(hdr.Bytes()))
		if e.Type != TypeFile || e.Size == 0 {
			e.Shared, e.InFrame = false, 0
			if cur.size >= MaxShared {
				cut()
			}
			continue
		}
		if e.Size < SmallFile {
			pl.locs[i] = loc{first: len(pl.frames), n: 1}
			e.Shared, e.InFrame = true, cur.size
			cur.pieces = append(cur.pieces, piece{entry: i, n: e.Size})
			cur.size += e.Size
			pl.tarLen += e.Size
			if cur.size >= GroupSize {
				cut()
			}
		} else {
			e.Shared, e.InFrame = false, 0
			cut()
			pl.locs[i].first = len(pl.frames)
			for off := int64(0); off < e.Size; off += ChunkSize {
				n := min(ChunkSize, e.Size-off)
				pl.frames = append(pl.frames, planned{own: i, size: n, pieces: []piece{{entry: i, off: off, n: n}}})
			}
			pl.locs[i].n = len(pl.frames) - pl.locs[i].first
			pl.tarLen += e.Size
		}
		raw(zeros[:(blockSize-e.Size%blockSize)%blockSize])
	}
	raw(zeros[:2*blockSize])
	cut()
	for k := range pl.frames {
		pl.frames[k].key = frameKey(entries, pl.frames[k].pieces)
	}
	return pl, nil
}

func frameKey(entries []Entry, pieces []piece) FrameKey {
	h := sha256.New()
	h.Write([]byte("cairn frame input v1\n"))
	var n [3 * binary.MaxVarintLen64]byte
	for _, pc := range pieces {
		if pc.raw != nil {
			b := binary.AppendUvarint(append(n[:0], 'r'), uint64(len(pc.raw)))
			h.Write(b)
			h.Write(pc.raw)
			continue
		}
		h.Write([]byte{'c'})
		h.Write([]byte(entries[pc.entry].SHA256))
		b := binary.AppendUvarint(n[:0], uint64(pc.off))
		h.Write(binary.AppendUvarint(b, uint64(pc.n)))
	}
	var k FrameKey
	h.Sum(k[:0])
	return k
}

// StoredFrame is a data frame of a stored release: its key and where its
// compressed bytes sit in the artifact.
type StoredFrame struct {
	Key            FrameKey
	Offset, Length int64
}

// StoredFrames lists the data frames of a packed release (by its TOC) whose
// place the TOC tells: every frame holding a content, and a frame of
// headers alone next to those. A TOC whose layout is not the one
// planFrames makes (it was not packed by this format) lists nothing.
func StoredFrames(toc *TOC) []StoredFrame {
	entries := make([]Entry, len(toc.Entries))
	copy(entries, toc.Entries)
	pl, err := planFrames(entries)
	if err != nil {
		return nil
	}
	offs := make([]int64, len(pl.frames))
	lens := make([]int64, len(pl.frames))
	for k := range offs {
		offs[k], lens[k] = -1, -1
	}
	for i, e := range toc.Entries {
		l := pl.locs[i]
		if e.Type != TypeFile || e.Size == 0 {
			continue
		}
		if e.Shared != entries[i].Shared || e.InFrame != entries[i].InFrame || l.n == 0 ||
			(l.n > 1 && len(e.Chunks) != l.n) || (l.n == 1 && len(e.Chunks) != 0) {
			return nil // another layout
		}
		off := e.FrameOffset
		for c := range l.n {
			n := e.FrameLength
			if l.n > 1 {
				n = e.Chunks[c]
			}
			k := l.first + c
			if offs[k] >= 0 && (offs[k] != off || lens[k] != n) {
				return nil
			}
			offs[k], lens[k] = off, n
			off += n
		}
	}
	// A frame of headers alone lies between the frames around it.
	for k := range offs {
		if offs[k] >= 0 {
			continue
		}
		if k > 0 && offs[k-1] >= 0 {
			offs[k] = offs[k-1] + lens[k-1]
			switch {
			case k == len(offs)-1:
				lens[k] = toc.DataLength - offs[k]
			case offs[k+1] >= 0:
				lens[k] = offs[k+1] - offs[k]
			default:
				offs[k] = -1
			}
		}
	}
	var out []StoredFrame
	for k, f := range pl.frames {
		if offs[k] >= 0 && lens[k] > 0 && offs[k]+lens[k] <= toc.DataLength {
			out = append(out, StoredFrame{Key: f.key, Offset: offs[k], Length: lens[k]})
		}
	}
	return out
}
