package release

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Limits bound what a tree may hold. Zero fields mean "no limit".
type Limits struct {
	MaxFiles int64 // entries of any type
	MaxBytes int64 // sum of regular file sizes
}

// PackOptions tune packing; none of them changes the bytes produced.
type PackOptions struct {
	Concurrency int           // compressing goroutines; 0 means GOMAXPROCS
	Progress    func(n int64) // called with each batch of content bytes read
	Limits      Limits        // checked while scanning the tree
}

// Result describes a packed artifact.
type Result struct {
	SHA256 string // hex sha256 of the artifact bytes
	Size   int64
	TOC    *TOC
}

type srcEntry struct {
	Entry
	abs string
}

// PackDir packs the tree rooted at dir into w. The bytes depend only on the
// tree's paths, contents, normalised modes and symlink targets. Symlinks that
// leave the tree, and anything but regular files, directories and symlinks,
// are rejected with ErrInvalid. The tree is walked while it is packed, so
// compression starts with the first files.
func PackDir(ctx context.Context, dir string, w io.Writer, opts PackOptions) (*Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	p := newPacker(ctx, w, opts.Concurrency)
	return p.run(func(fn func(srcEntry) error) error {
		wk := walker{lim: opts.Limits, fn: fn}
		return wk.dir(dir, "")
	}, opts.Progress)
}

// walker lists a tree in path order (the byte order of the slash-separated
// relative paths), one directory at a time, and checks the limits as it goes.
type walker struct {
	lim          Limits
	fn           func(srcEntry) error
	files, total int64
}

// walkItem is a directory entry, or (contents) the entries below it.
type walkItem struct {
	key      string
	d        fs.DirEntry
	contents bool
}

func (w *walker) dir(abs, rel string) error {
	des, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	// The paths below a subdirectory "d" all start with "d/", so they sort
	// as the key "d/" among the siblings: after "d" itself but also after
	// siblings such as "d-x" or "d.js".
	items := make([]walkItem, 0, len(des)+len(des)/2)
	for _, d := range des {
		items = append(items, walkItem{key: d.Name(), d: d})
		if d.IsDir() {
			items = append(items, walkItem{key: d.Name() + "/", d: d, contents: true})
		}
	}
	slices.SortFunc(items, func(a, b walkItem) int { return strings.Compare(a.key, b.key) })
	for _, it := range items {
		name := it.d.Name()
		childAbs, childRel := filepath.Join(abs, name), name
		if rel != "" {
			childRel = rel + "/" + name
		}
		if it.contents {
			err = w.dir(childAbs, childRel)
		} else {
			err = w.entry(childAbs, childRel, it.d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) entry(abs, rel string, d fs.DirEntry) error {
	if err := checkRelPath(rel); err != nil {
		return err
	}
	info, err := d.Info()
	if err != nil {
		return err
	}
	e := srcEntry{Entry: Entry{Path: rel}, abs: abs}
	switch m := info.Mode(); {
	case m.IsRegular():
		e.Type, e.Mode, e.Size = TypeFile, fileMode(uint32(m.Perm())), info.Size()
		e.ContentType = ContentType(rel)
		w.total += e.Size
	case m.IsDir():
		e.Type, e.Mode = TypeDir, 0o755
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		if err := checkLink(rel, target); err != nil {
			return err
		}
		e.Type, e.Mode, e.Link = TypeSymlink, 0o777, target
	default:
		return invalidf("%q is not a regular file, directory or symlink", rel)
	}
	w.files++
	if w.lim.MaxFiles > 0 && w.files > w.lim.MaxFiles {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, w.lim.MaxFiles)
	}
	if w.lim.MaxBytes > 0 && w.total > w.lim.MaxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, w.lim.MaxBytes)
	}
	return w.fn(e)
}

// fileMode normalises a regular file's permissions to 0644 or 0755.
func fileMode(perm uint32) uint32 {
	if perm&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// checkLink accepts a relative symlink target that stays inside the tree.
func checkLink(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return invalidf("symlink %q points outside the tree", name)
	}
	joined := filepath.ToSlash(filepath.Join(filepath.Dir(name), target))
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return invalidf("symlink %q points outside the tree", name)
	}
	return nil
}

// tarHeader is the canonical tar header of an entry.
func tarHeader(e *Entry) *tar.Header {
	h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), ModTime: time.Unix(0, 0)}
	switch e.Type {
	case TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	default:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	return h
}
