// Package overlay makes an instance's root: an overlayfs whose lower
// layer is a release's read-only tree in the cache and whose upper and
// work directories belong to the instance, on the same filesystem. The
// files cairn adds (/etc/hosts, /etc/resolv.conf) are written into the
// empty upper directory through an os.Root before the mount, so nothing
// is ever written by following a path of the release: a release whose
// /etc is a symlink to a host path gets a plain /etc directory in its
// upper layer that hides the link.
package overlay

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Root is one instance's layered root.
type Root struct {
	Lower string // the release's tree, read-only, shared
	Dir   string // the instance's: Dir/upper, Dir/work, Dir/root (the mount)
}

func (r Root) Upper() string  { return filepath.Join(r.Dir, "upper") }
func (r Root) Work() string   { return filepath.Join(r.Dir, "work") }
func (r Root) Merged() string { return filepath.Join(r.Dir, "root") }

// Mounted reports whether Merged is a mount point of its own.
func (r Root) Mounted() bool {
	var a, b unix.Stat_t
	if unix.Lstat(r.Merged(), &a) != nil || unix.Lstat(r.Dir, &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// Mount writes files (slash paths in the root, e.g. "etc/hosts") into a
// new upper directory and mounts the overlay at Merged. A root already
// mounted is left as it is (its upper keeps the instance's writes).
func (r Root) Mount(files map[string][]byte) error {
	if r.Mounted() {
		return nil
	}
	for _, d := range []string{r.Upper(), r.Work(), r.Merged()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := writeFiles(r.Upper(), files); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", r.Lower, r.Upper(), r.Work())
	if err := unix.Mount("overlay", r.Merged(), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", r.Merged(), err)
	}
	return nil
}

// writeFiles writes each file inside upper through an os.Root: parents
// are made as directories (0755, root), never followed out of upper.
func writeFiles(upper string, files map[string][]byte) error {
	root, err := os.OpenRoot(upper)
	if err != nil {
		return err
	}
	defer root.Close()
	for name, data := range files {
		name = path.Clean(name)
		if path.IsAbs(name) || name == "." || name == ".." || len(name) > 2 && name[:3] == "../" {
			return fmt.Errorf("overlay: bad file name %q", name)
		}
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Unmount unmounts the root (lazily if it is busy).
func (r Root) Unmount() error {
	if !r.Mounted() {
		return nil
	}
	if err := unix.Unmount(r.Merged(), 0); err != nil {
		if err := unix.Unmount(r.Merged(), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", r.Merged(), err)
		}
	}
	return nil
}

// Remove unmounts the root and removes the instance's layers.
func (r Root) Remove() error {
	if err := r.Unmount(); err != nil {
		return err
	}
	for _, d := range []string{r.Upper(), r.Work(), r.Merged()} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}
