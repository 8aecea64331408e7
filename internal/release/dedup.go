package release

import (
	"bytes"
	"crypto/sha256"
)

// Built trees often hold identical files: one library bundled twice, assets
// copied into several folders. A file's own frames depend on its bytes only,
// so a file equal to an earlier one gets that file's compressed frames again
// instead of being compressed again. The artifact is the same either way.
//
// The writer keeps the frames of files up to dedupMax (within dedupBudget).
// A later file of the same size is read whole and hashed by the producer; if
// it equals a kept file, its frames are copies and skip the compressors.
const dedupMax = 16 << 20 // larger files are always compressed

// dedupBudget bounds the compressed bytes kept for reuse in one pack; tests
// set it to 0 to compare against packing without reuse.
var dedupBudget int64 = 32 << 20

// kept is a file whose compressed frames may be reused by a later, equal file.
// The writer sets every field, then closes done after the file's last frame.
type kept struct {
	sum  [sha256.Size]byte
	outs [][]byte // its frames; nil if over the budget
	over bool
	done chan struct{}
}

// dedupFile packs the content of a file of its own frames up to dedupMax.
func (p *packer) dedupFile(i int, f srcFile, abs string, progress func(int64)) error {
	size := p.entries[i].Size
	earlier := p.kept[size]
	if len(earlier) == 0 { // the first file of its size: compress it as it is read
		k := &kept{done: make(chan struct{})}
		p.kept[size] = append(earlier, k)
		fh := &fileHash{h: sha256.New()}
		for left := size; left > 0; {
			j, err := p.readChunk(i, f, abs, &left, progress)
			if err != nil {
				return err
			}
			fh.add(j)
			j.keep = k
			if err := p.send(j); err != nil {
				return err
			}
		}
		return nil
	}
	var jobs []*frameJob
	defer func() { // on error, before the jobs were handed on
		for _, j := range jobs {
			putBuf(&chunkBufs, j.data)
		}
	}()
	h := sha256.New()
	for left := size; left > 0; {
		j, err := p.readChunk(i, f, abs, &left, progress)
		if err != nil {
			return err
		}
		h.Write(j.data)
		jobs = append(jobs, j)
	}
	last := jobs[len(jobs)-1]
	h.Sum(last.sum[:0])
	for _, k := range earlier {
		select {
		case <-k.done:
		case <-p.ctx.Done():
			return p.err()
		}
		if k.outs == nil || k.sum != last.sum {
			continue
		}
		send := jobs
		jobs = nil
		for n, j := range send {
			putBuf(&chunkBufs, j.data)
			j.data, j.out, j.borrowed = nil, k.outs[n], true
			close(j.done)
			if err := p.enqueue(j); err != nil { // written as is, not compressed
				return err
			}
		}
		return nil
	}
	k := &kept{done: make(chan struct{})}
	p.kept[size] = append(earlier, k)
	send := jobs
	jobs = nil
	for _, j := range send {
		j.keep = k
		if err := p.send(j); err != nil {
			return err
		}
	}
	return nil
}

// keepFrame copies a written frame of a kept file, within the budget; it
// runs on the writer, after the file's digest is known on its last frame.
func (p *packer) keepFrame(j *frameJob) {
	k := j.keep
	if !k.over && p.keptBytes+int64(len(j.out)) <= dedupBudget {
		k.outs = append(k.outs, bytes.Clone(j.out))
		p.keptBytes += int64(len(j.out))
	} else {
		k.over = true
	}
	if j.last {
		if k.over {
			for _, o := range k.outs {
				p.keptBytes -= int64(len(o))
			}
			k.outs = nil
		}
		k.sum = j.sum
		close(k.done)
	}
}
