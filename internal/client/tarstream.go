package client

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cairnhq/cairn/internal/release"
)

// treeEntry is one path of a scanned tree.
type treeEntry struct {
	rel  string // slash-separated, relative, no "./"
	abs  string
	mode fs.FileMode
	size int64
	st   stamp // for the HashCache
}

// Filter decides which entries of a tree are sent (internal/ignore's Set,
// the same rules `cairn pack` applies through release.PackOptions.Filter).
type Filter interface {
	Listed(rel string, names []string) error
	Skip(rel, abs string, isDir bool) (bool, error)
}

// scanTree lists dir's entries sorted by path, leaving out what filter
// (may be nil) skips. Symlinks are listed, never followed (only dir itself
// may be a symlink). Anything but regular files, directories and symlinks is
// an error.
func scanTree(dir string, filter Filter) ([]treeEntry, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var out []treeEntry
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		des, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		if filter != nil {
			names := make([]string, len(des))
			for i, d := range des {
				names[i] = d.Name()
			}
			if err := filter.Listed(rel, names); err != nil {
				return err
			}
		}
		for _, d := range des {
			childAbs, childRel := filepath.Join(abs, d.Name()), d.Name()
			if rel != "" {
				childRel = rel + "/" + childRel
			}
			if filter != nil {
				if skip, err := filter.Skip(childRel, childAbs, d.IsDir()); err != nil {
					return err
				} else if skip {
					continue
				}
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			m := info.Mode()
			if !m.IsRegular() && !m.IsDir() && m&fs.ModeSymlink == 0 {
				return fmt.Errorf("%s: not a regular file, directory or symlink", filepath.Join(dir, filepath.FromSlash(childRel)))
			}
			out = append(out, treeEntry{rel: childRel, abs: childAbs, mode: m, size: info.Size(), st: stampOf(info)})
			if m.IsDir() {
				if err := walk(childAbs, childRel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

// TreeSize counts the regular files under dir and their total size, for a
// progress bar's total.
func TreeSize(dir string, filter Filter) (files int, bytes int64, err error) {
	t, err := ScanTree(dir, filter)
	if err != nil {
		return 0, 0, err
	}
	files, bytes = t.Size()
	return files, bytes, nil
}

// WriteTree writes a plain tar of the tree under dir, less what filter (may
// be nil) skips, to w: entries sorted by
// path, names relative without "./" (directories end in "/"), symlinks as
// symlinks (never followed), file contents streamed. Headers are normalised
// (mtime 0, uid/gid 0, modes 0644/0755/0777) so the same tree gives the same
// bytes. progress, if not nil, is called with each batch of content bytes
// written. It stops with ctx's error when ctx ends.
func WriteTree(ctx context.Context, dir string, filter Filter, w io.Writer, progress func(int64)) error {
	t, err := ScanTree(dir, filter)
	if err != nil {
		return err
	}
	return t.Write(ctx, w, progress)
}

func writeEntry(ctx context.Context, tw *tar.Writer, e treeEntry, progress func(int64)) error {
	h := &tar.Header{Name: e.rel, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	switch {
	case e.mode.IsDir():
		h.Typeflag, h.Name, h.Mode = tar.TypeDir, e.rel+"/", 0o755
		return tw.WriteHeader(h)
	case e.mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(e.abs)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
		return tw.WriteHeader(h)
	}
	f, err := os.Open(e.abs)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: changed while reading: no longer a regular file", e.abs)
	}
	h.Typeflag, h.Size, h.Mode = tar.TypeReg, fi.Size(), 0o644
	if fi.Mode().Perm()&0o111 != 0 {
		h.Mode = 0o755
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.CopyN(&progressWriter{ctx: ctx, w: tw, fn: progress}, f, h.Size)
	if err == io.EOF {
		return fmt.Errorf("%s: changed while reading: %d of %d bytes", e.abs, n, h.Size)
	}
	return err
}

// progressWriter reports bytes written and stops when ctx ends.
type progressWriter struct {
	ctx context.Context
	w   io.Writer
	fn  func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	if p.fn != nil && n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// Tree is a scanned tree, ready to be checked and sent.
type Tree struct {
	dir     string
	entries []treeEntry
	// Cache, if set, gives Manifest the digests of files unchanged since
	// they were last hashed, and learns the others.
	Cache *HashCache
	// Hashed and HashedBytes count what Manifest read to hash.
	Hashed      int
	HashedBytes int64
}

// ScanTree lists the tree under dir, less what filter (may be nil) skips.
func ScanTree(dir string, filter Filter) (*Tree, error) {
	entries, err := scanTree(dir, filter)
	if err != nil {
		return nil, err
	}
	return &Tree{dir: dir, entries: entries}, nil
}

// Size counts the regular files of the tree and their total size.
func (t *Tree) Size() (files int, bytes int64) {
	for _, e := range t.entries {
		if e.mode.IsRegular() {
			files++
			bytes += e.size
		}
	}
	return files, bytes
}

// Check finds, before anything is sent, what the server would refuse: a
// tree without a regular file, an entrypoint (if not "") that is not a
// regular file of the tree, and a symlink whose target leaves the tree.
func (t *Tree) Check(entrypoint string) error {
	if files, _ := t.Size(); files == 0 {
		return fmt.Errorf("%s has no files to publish", t.dir)
	}
	if entrypoint != "" {
		i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].rel >= entrypoint })
		if i == len(t.entries) || t.entries[i].rel != entrypoint || !t.entries[i].mode.IsRegular() {
			return fmt.Errorf("--entrypoint %q is not a file of %s", entrypoint, t.dir)
		}
	}
	for _, e := range t.entries {
		if e.mode&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(e.abs)
		if err != nil {
			return err
		}
		if err := release.CheckLink(e.rel, target); err != nil {
			return fmt.Errorf("%s: %w", t.dir, err)
		}
	}
	return nil
}

// Write writes the tree as WriteTree does.
func (t *Tree) Write(ctx context.Context, w io.Writer, progress func(int64)) error {
	tw := tar.NewWriter(w)
	for _, e := range t.entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(ctx, tw, e, progress); err != nil {
			return err
		}
	}
	return tw.Close()
}
