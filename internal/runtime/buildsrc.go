package runtime

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// copySource copies the source tree src (a cached release's tree) to
// upper/src, the build's upper layer before it is mounted: directories,
// regular files with their modes, symlinks as symlinks, every mtime
// SOURCE_DATE_EPOCH. It writes through an os.Root of upper, which is
// empty, so nothing of the builder's tree (a /src symlink to a host
// path) is ever followed. upper/src is opaque: a /src of the builder's
// does not show through.
func copySource(src, upper string, epoch int64) error {
	root, err := os.OpenRoot(upper)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Mkdir("src", 0o755); err != nil {
		return err
	}
	d, err := root.Open("src")
	if err != nil {
		return err
	}
	err = unix.Fsetxattr(int(d.Fd()), "trusted.overlay.opaque", []byte("y"), 0)
	d.Close()
	if err != nil {
		return fmt.Errorf("make /src opaque: %w", err)
	}
	mtime := time.Unix(epoch, 0)
	dirs := []string{"src"}
	err = filepath.WalkDir(src, func(abs string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, abs)
		if err != nil || rel == "." {
			return err
		}
		name := path.Join("src", filepath.ToSlash(rel))
		info, err := de.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case de.IsDir():
			if err := root.Mkdir(name, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, name)
			return root.Chmod(name, perm)
		case info.Mode().IsRegular():
			if err := copyFile(root, abs, name, perm); err != nil {
				return err
			}
			return root.Chtimes(name, mtime, mtime)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			return root.Symlink(target, name)
		}
		return fmt.Errorf("%s: not a regular file, directory or symlink", rel)
	})
	if err != nil {
		return err
	}
	for _, name := range slices.Backward(dirs) { // after their contents
		if err := root.Chtimes(name, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(root *os.Root, abs, name string, perm fs.FileMode) error {
	in, err := os.OpenFile(abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(perm)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
