package release

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// aheadEntries bounds how far the walk runs ahead of the packer; with small
// files of at most SmallFile bytes it bounds the memory read ahead too.
const aheadEntries = 256

// smallBufs recycles the buffers small files are read into.
var smallBufs sync.Pool // of *[]byte, cap SmallFile

// walkTree calls fn with every entry below dir, in path order (the byte
// order of the slash-separated relative paths), and checks lim. One
// goroutine lists the directories; readers goroutines stat each entry and
// read each small file ahead of fn, so that the many small syscalls of a
// tree of small files overlap with packing. fn sees the entries, and the
// first error, in the order a serial walk would.
func walkTree(ctx context.Context, dir string, filter Filter, lim Limits, readers int, fn func(*srcEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	// The lister and the readers end before walkTree returns, on an error
	// too: cancel stops the lister, which closes work, which ends the
	// readers.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ahead := make(chan *walked, aheadEntries) // in path order, to fn
	work := make(chan *walked, aheadEntries)  // to the readers
	wg.Add(1 + max(1, readers))
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(ahead)
		l := lister{ctx: ctx, ahead: ahead, work: work, filter: filter}
		if err := l.dir(dir, ""); err != nil && ctx.Err() == nil {
			w := &walked{err: err, done: make(chan struct{})}
			close(w.done)
			l.send(w, false)
		}
	}()
	for range max(1, readers) {
		go func() {
			defer wg.Done()
			for w := range work {
				w.load()
				close(w.done)
			}
		}()
	}
	var files, total, names int64
	for w := range ahead {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if w.err != nil {
			return w.err
		}
		files++
		total += w.src.Size
		if lim.MaxFiles > 0 && files > lim.MaxFiles {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxFiles)
		}
		if lim.MaxBytes > 0 && total > lim.MaxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
		}
		if names += int64(len(w.src.Path) + len(w.src.Link)); names > maxNameBytes {
			return fmt.Errorf("%w: more than %d bytes of names and link targets", ErrTooLarge, maxNameBytes)
		}
		if err := fn(&w.src); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// walked is one entry on its way from the lister through a reader to fn.
type walked struct {
	rel  string
	d    fs.DirEntry
	src  srcEntry // set by load
	err  error    // set by load, or by the lister for a directory it cannot read
	done chan struct{}
}

// lister lists directories in path order.
type lister struct {
	ctx         context.Context
	ahead, work chan *walked
	filter      Filter // nil: every entry
}

// send queues w for fn and, unless it is already done, for a reader.
func (l *lister) send(w *walked, load bool) bool {
	select {
	case l.ahead <- w:
	case <-l.ctx.Done():
		return false
	}
	if !load {
		return true
	}
	select {
	case l.work <- w:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// listItem is a directory entry, or (contents) the entries below it.
type listItem struct {
	key      string
	d        fs.DirEntry
	contents bool
}

func (l *lister) dir(abs, rel string) error {
	des, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	// The paths below a subdirectory "d" all start with "d/", so they sort
	// as the key "d/" among the siblings: after "d" itself but also after
	// siblings such as "d-x" or "d.js".
	if l.filter != nil {
		names := make([]string, len(des))
		for i, d := range des {
			names[i] = d.Name()
		}
		if err := l.filter.Listed(rel, names); err != nil {
			return err
		}
	}
	items := make([]listItem, 0, len(des)+len(des)/2)
	for _, d := range des {
		if l.filter != nil {
			childRel := d.Name()
			if rel != "" {
				childRel = rel + "/" + childRel
			}
			skip, err := l.filter.Skip(childRel, filepath.Join(abs, d.Name()), d.IsDir())
			if err != nil {
				return err
			}
			if skip {
				continue
			}
		}
		items = append(items, listItem{key: d.Name(), d: d})
		if d.IsDir() {
			items = append(items, listItem{key: d.Name() + "/", d: d, contents: true})
		}
	}
	slices.SortFunc(items, func(a, b listItem) int { return strings.Compare(a.key, b.key) })
	for _, it := range items {
		name := it.d.Name()
		childAbs, childRel := filepath.Join(abs, name), name
		if rel != "" {
			childRel = rel + "/" + name
		}
		if it.contents {
			if err := l.dir(childAbs, childRel); err != nil {
				return err
			}
			continue
		}
		w := &walked{rel: childRel, d: it.d, src: srcEntry{abs: childAbs}, done: make(chan struct{})}
		if !l.send(w, true) {
			return l.ctx.Err()
		}
	}
	return nil
}

// load stats the entry and reads it if it is a small file.
func (w *walked) load() {
	rel, abs := w.rel, w.src.abs
	if w.err = checkName(rel); w.err != nil {
		return
	}
	info, err := w.d.Info()
	if err != nil {
		w.err = err
		return
	}
	e := &w.src.Entry
	e.Path = rel
	switch m := info.Mode(); {
	case m.IsRegular():
		e.Type, e.Mode, e.Size = TypeFile, fileMode(uint32(m.Perm())), info.Size()
		e.ContentType = ContentType(rel)
		if e.Size > 0 && e.Size < SmallFile {
			w.src.data, w.err = readSmall(abs, e.Size)
		}
	case m.IsDir():
		e.Type, e.Mode = TypeDir, 0o755
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err == nil {
			err = CheckLink(rel, target)
		}
		w.err = err
		e.Type, e.Mode, e.Link = TypeSymlink, 0o777, target
	default:
		w.err = invalidf("%q is not a regular file, directory or symlink", rel)
	}
}

// readSmall reads a small file of the given size into a buffer from
// smallBufs; one read of size+1 bytes also tells whether the file grew.
func readSmall(abs string, size int64) ([]byte, error) {
	f, err := openFile(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := getBuf(&smallBufs, SmallFile)
	n, err := io.ReadAtLeast(f, b[:size+1], int(size))
	switch {
	case err != nil:
		err = fmt.Errorf("%s changed while packing: %w", abs, err)
	case int64(n) > size:
		err = fmt.Errorf("%s grew while packing", abs)
	}
	if err != nil {
		putBuf(&smallBufs, b)
		return nil, err
	}
	return b[:size], nil
}
