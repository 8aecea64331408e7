package release

import (
	"archive/tar"
	"context"
	"io"
	"runtime"
	"time"
)

// Limits bound what a tree may hold. Zero fields mean "no limit".
type Limits struct {
	MaxFiles int64 // entries of any type
	MaxBytes int64 // sum of regular file sizes
}

// PackOptions tune packing; none but Filter changes the bytes produced.
type PackOptions struct {
	Concurrency int           // compressing goroutines; 0 means GOMAXPROCS
	Progress    func(n int64) // called with each batch of content bytes read
	Limits      Limits        // checked while scanning the tree
	Filter      Filter        // if set, leaves entries out of the tree packed
}

// Filter decides which entries of a tree are packed (the CLI's ignore
// rules, internal/ignore). Its errors end the walk.
type Filter interface {
	// Listed is called with the entry names of each listed directory (rel ""
	// is the root) before any of them is packed.
	Listed(rel string, names []string) error
	// Skip reports whether the entry rel (abs on disk) is left out; a
	// directory left out is not walked.
	Skip(rel, abs string, isDir bool) (bool, error)
}

// Result describes a packed artifact.
type Result struct {
	SHA256 string // hex sha256 of the artifact bytes
	Size   int64
	TOC    *TOC
	Reused int64 // Assemble: compressed bytes copied from stored frames
}

// srcEntry is a walked entry: where it is, and the content of a small file.
type srcEntry struct {
	Entry
	abs  string
	data []byte // a small file's content, from smallBufs
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
	return p.run(func(fn func(*srcEntry) error) error {
		return walkTree(p.ctx, dir, opts.Filter, opts.Limits, opts.Concurrency, fn)
	}, opts.Progress)
}

// fileMode normalises a regular file's permissions to 0644 or 0755.
func fileMode(perm uint32) uint32 {
	if perm&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// tarHeader is the canonical tar header of an entry.
func tarHeader(e *Entry) *tar.Header {
	h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), ModTime: time.Unix(0, 0),
		Uid: int(e.UID), Gid: int(e.GID)} // 0 in static releases
	for _, name := range sortedXattrs(e.Xattrs) {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+name] = string(e.Xattrs[name])
	}
	switch e.Type {
	case TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	case TypeHardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, e.Link
	case TypeChar, TypeBlock:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(e.DevMajor), int64(e.DevMinor)
		if e.Type == TypeBlock {
			h.Typeflag = tar.TypeBlock
		}
	case TypeFifo:
		h.Typeflag = tar.TypeFifo
	default:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	return h
}
