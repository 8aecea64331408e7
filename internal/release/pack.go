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
	"sort"
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
// are rejected with ErrInvalid.
func PackDir(ctx context.Context, dir string, w io.Writer, opts PackOptions) (*Result, error) {
	src, err := scanTree(dir, opts.Limits)
	if err != nil {
		return nil, err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	p := newPacker(ctx, w, opts.Concurrency)
	return p.run(src, opts.Progress)
}

func scanTree(dir string, lim Limits) ([]srcEntry, error) {
	var out []srcEntry
	var total int64
	err := filepath.WalkDir(dir, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, abs)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
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
			total += e.Size
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
		out = append(out, e)
		if lim.MaxFiles > 0 && int64(len(out)) > lim.MaxFiles {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxFiles)
		}
		if lim.MaxBytes > 0 && total > lim.MaxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
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
