package release

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// RootfsFile is an entry of a root filesystem on disk, as ScanRootfs finds it.
type RootfsFile struct {
	Entry        // Path, Type, Mode, Size, UID, GID, DevMajor, DevMinor, Link, Xattrs; no SHA256
	Abs   string // where it is on disk
}

// ScanRootfs calls fn with every entry below dir in path order, as a rootfs
// release records it: owners, the full mode, device numbers, kept xattrs
// (files and directories), and hard links (the first path of an inode in
// path order is the file, later ones are TypeHardlink entries naming it).
// It reads every file's metadata, so it runs as root to see everything.
// Names against the rules of the format, and sockets, are ErrInvalid.
func ScanRootfs(ctx context.Context, dir string, fn func(*RootfsFile) error) error {
	s := scanner{ctx: ctx, fn: fn, inodes: map[[2]uint64]string{}}
	return s.dir(dir, "")
}

type scanner struct {
	ctx    context.Context
	fn     func(*RootfsFile) error
	inodes map[[2]uint64]string // dev, inode of files with more than one link -> first path
}

func (s *scanner) dir(abs, rel string) error {
	des, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	items := make([]listItem, 0, len(des)+len(des)/2)
	for _, d := range des {
		items = append(items, listItem{key: d.Name(), d: d})
		if d.IsDir() {
			items = append(items, listItem{key: d.Name() + "/", d: d, contents: true})
		}
	}
	slices.SortFunc(items, func(a, b listItem) int { return strings.Compare(a.key, b.key) })
	for _, it := range items {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		name := it.d.Name()
		childAbs, childRel := filepath.Join(abs, name), name
		if rel != "" {
			childRel = rel + "/" + name
		}
		if it.contents {
			if err := s.dir(childAbs, childRel); err != nil {
				return err
			}
			continue
		}
		f, err := s.stat(childAbs, childRel)
		if err != nil {
			return err
		}
		if err := s.fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) stat(abs, rel string) (*RootfsFile, error) {
	if err := checkName(rel); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: abs, Err: err}
	}
	f := &RootfsFile{Abs: abs, Entry: Entry{Path: rel, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}}
	e := &f.Entry
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type, e.Size = TypeFile, st.Size
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := s.inodes[key]; ok {
				f.Entry = Entry{Path: rel, Type: TypeHardlink, Link: first}
				return f, nil
			}
			s.inodes[key] = rel
		}
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFLNK:
		target, err := os.Readlink(abs)
		if err != nil {
			return nil, err
		}
		if err := checkRootfsLink(rel, target); err != nil {
			return nil, err
		}
		e.Type, e.Mode, e.UID, e.GID, e.Link = TypeSymlink, 0o777, st.Uid, st.Gid, target
		return f, nil
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = TypeBlock
		}
		e.DevMajor, e.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		return f, nil
	case unix.S_IFIFO:
		e.Type = TypeFifo
		return f, nil
	default:
		return nil, invalidf("%q is a socket or of an unknown type", rel)
	}
	x, err := diskXattrs(abs)
	if err != nil {
		return nil, err
	}
	e.Xattrs = x
	return f, nil
}

// diskXattrs reads the kept extended attributes of the file at abs.
func diskXattrs(abs string) (map[string][]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(abs, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(abs, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(abs, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: abs, Err: err}
	}
	var x map[string][]byte
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !KeepXattr(name) {
			continue
		}
		v := make([]byte, maxXattrValue)
		m, err := unix.Lgetxattr(abs, name, v)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr", Path: abs, Err: err}
		}
		if x == nil {
			x = map[string][]byte{}
		}
		x[name] = v[:m:m]
	}
	return x, nil
}

// WriteRootfsTar writes dir as a tar stream that PackRootfsTar takes back
// unchanged: the entries ScanRootfs finds, hard links as link entries,
// xattrs as PAX SCHILY.xattr records. cairn publish DIR --kind rootfs
// sends it.
func WriteRootfsTar(ctx context.Context, dir string, w io.Writer, progress func(int64)) error {
	tw := tar.NewWriter(w)
	err := ScanRootfs(ctx, dir, func(f *RootfsFile) error {
		if err := tw.WriteHeader(tarHeader(&f.Entry)); err != nil {
			return err
		}
		if f.Type != TypeFile || f.Size == 0 {
			return nil
		}
		fd, err := openFile(f.Abs)
		if err != nil {
			return err
		}
		defer fd.Close()
		n, err := io.Copy(tw, io.LimitReader(fd, f.Size))
		if err == nil && n != f.Size {
			err = errors.New(f.Abs + " shrank while it was read")
		}
		if progress != nil {
			progress(n)
		}
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// PackRootfsDir packs the root filesystem at dir (read as root to see every
// file) into a rootfs release, walking it in path order while it packs
// (ScanRootfs), without a copy. The release is the one PackRootfsTar makes
// of WriteRootfsTar's stream of dir.
func PackRootfsDir(ctx context.Context, dir string, w io.Writer, opts RootfsOptions) (*Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	p := newPacker(ctx, w, opts.Concurrency)
	p.rootfs = true
	lim := opts.Limits
	return p.run(func(fn func(*srcEntry) error) error {
		// The scan (stat, xattrs, small files read) runs ahead of the
		// packer, at most aheadEntries entries, so that its syscalls
		// overlap with the packing.
		ctx, cancel := context.WithCancel(p.ctx)
		defer cancel()
		ahead := make(chan *srcEntry, aheadEntries)
		scanErr := make(chan error, 1)
		go func() {
			defer close(ahead)
			scanErr <- scanAhead(ctx, dir, lim, ahead)
		}()
		for src := range ahead {
			if err := fn(src); err != nil {
				cancel()
				for range ahead { // let the scan end
				}
				<-scanErr
				return err
			}
		}
		return <-scanErr
	}, nil)
}

// scanAhead sends dir's entries, small files read, to ahead, checking lim.
func scanAhead(ctx context.Context, dir string, lim Limits, ahead chan<- *srcEntry) error {
	var files, total, names int64
	return ScanRootfs(ctx, dir, func(f *RootfsFile) error {
		files++
		total += f.Size
		names += int64(len(f.Path) + len(f.Link))
		switch {
		case lim.MaxFiles > 0 && files > lim.MaxFiles:
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxFiles)
		case lim.MaxBytes > 0 && total > lim.MaxBytes:
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
		case names > maxNameBytes:
			return fmt.Errorf("%w: more than %d bytes of names and link targets", ErrTooLarge, maxNameBytes)
		}
		src := &srcEntry{Entry: f.Entry, abs: f.Abs}
		if src.Type == TypeFile {
			src.ContentType = ContentType(src.Path)
			if src.Size > 0 && src.Size < SmallFile {
				var err error
				if src.data, err = readSmall(src.abs, src.Size); err != nil {
					return err
				}
			}
		}
		select {
		case ahead <- src:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// RootfsDirDigest is the rootfs tree digest of the tree at dir as it is on
// disk (RootfsTreeDigest), hashing files with workers goroutines.
func RootfsDirDigest(ctx context.Context, dir string, workers int) (string, error) {
	entries, err := RootfsDirEntries(ctx, dir, workers)
	if err != nil {
		return "", err
	}
	return RootfsTreeDigest(entries), nil
}

// RootfsDirEntries are the entries of the tree at dir as it is on disk,
// in the order RootfsTreeDigest hashes them, with the sha256 of every
// regular file (hashed by workers goroutines).
func RootfsDirEntries(ctx context.Context, dir string, workers int) ([]Entry, error) {
	var entries []Entry
	var abs []string
	err := ScanRootfs(ctx, dir, func(f *RootfsFile) error {
		entries = append(entries, f.Entry)
		abs = append(abs, f.Abs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	work := make(chan int, 256)
	errs := make(chan error, max(1, workers))
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ferr error
			for i := range work {
				if ferr == nil {
					entries[i].SHA256, ferr = fileSHA256(abs[i], entries[i].Size)
				}
			}
			errs <- ferr
		}()
	}
	for i := range entries {
		if entries[i].Type == TypeFile {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return entries, nil
}

func fileSHA256(abs string, size int64) (string, error) {
	fd, err := openFile(abs)
	if err != nil {
		return "", err
	}
	defer fd.Close()
	h := sha256.New()
	n, err := io.Copy(h, fd)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", errors.New(abs + " changed while it was hashed")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
