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
)

// treeEntry is one path of a scanned tree.
type treeEntry struct {
	rel  string // slash-separated, relative, no "./"
	abs  string
	mode fs.FileMode
	size int64
}

// scanTree lists dir's entries sorted by path. Symlinks are listed, never
// followed (only dir itself may be a symlink). Anything but regular files,
// directories and symlinks is an error.
func scanTree(dir string) ([]treeEntry, error) {
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
	err = filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if abs == root {
			return nil
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode()
		if !m.IsRegular() && !m.IsDir() && m&fs.ModeSymlink == 0 {
			return fmt.Errorf("%s: not a regular file, directory or symlink", filepath.Join(dir, rel))
		}
		out = append(out, treeEntry{rel: filepath.ToSlash(rel), abs: abs, mode: m, size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

// TreeSize counts the regular files under dir and their total size, for a
// progress bar's total.
func TreeSize(dir string) (files int, bytes int64, err error) {
	entries, err := scanTree(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if e.mode.IsRegular() {
			files++
			bytes += e.size
		}
	}
	return files, bytes, nil
}

// WriteTree writes a plain tar of the tree under dir to w: entries sorted by
// path, names relative without "./" (directories end in "/"), symlinks as
// symlinks (never followed), file contents streamed. Headers are normalised
// (mtime 0, uid/gid 0, modes 0644/0755/0777) so the same tree gives the same
// bytes. progress, if not nil, is called with each batch of content bytes
// written. It stops with ctx's error when ctx ends.
func WriteTree(ctx context.Context, dir string, w io.Writer, progress func(int64)) error {
	entries, err := scanTree(dir)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(ctx, tw, e, progress); err != nil {
			return err
		}
	}
	return tw.Close()
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
