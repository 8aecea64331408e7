// Package unpack unpacks a rootfs release (or, when asked, a static one)
// onto disk, as root, and never writes, chmods, chowns or links outside
// the target directory whatever the release holds. Every path is opened through an os.Root on the target
// (RESOLVE_IN_ROOT-like confinement by the runtime), the release's tree is
// first checked with pathres (the resolver the static upload checks use:
// no entry below a symlink or a file, no duplicates, hard links only to an
// earlier regular file), nothing is ever opened through a symlink of the
// release, and once the tree is written its digest is computed from the
// disk and compared with the TOC's. On any error the partial tree is
// removed. docs/format.md ("Unpacking a rootfs") is the contract.
package unpack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/release/pathres"
)

// Options of an unpack.
type Options struct {
	// AllowDevices lets the release create character and block devices;
	// without it a release holding one is refused before anything is
	// written. FIFOs are always allowed.
	AllowDevices bool
	// SkipDevices (without AllowDevices) unpacks a release that holds
	// character or block devices without making them: each is left out
	// of the tree, and the tree on disk is verified against the TOC's
	// digest with the devices' entries taken as the TOC gives them (the
	// rest must be on disk exactly). A host's instance gets its /dev from
	// its driver (a tmpfs with the standard devices), so a debootstrap
	// tree's /dev nodes are not needed, and a release never makes a
	// device node on the host.
	SkipDevices bool
	// AllowStatic unpacks a static release too (a build's source
	// snapshot): its entries are directories, regular files and symlinks
	// inside the tree, owned by root, and the tree on disk is verified
	// against its static tree digest (release.TreeDigest).
	AllowStatic bool
	// Concurrency is the number of goroutines decompressing and writing
	// files; 0 means GOMAXPROCS.
	Concurrency int
}

// Errors.
var (
	// ErrRefused: the release holds something the unpacker does not write
	// (a device without AllowDevices, a static release, a tree that does
	// not hold together). Nothing was written.
	ErrRefused = errors.New("release refused by the unpacker")
	// ErrDigest: the tree on disk does not match the TOC's tree digest.
	// The partial tree was removed.
	ErrDigest = errors.New("unpacked tree does not match the release's tree digest")
)

// Unpack writes the rootfs release read from ra (size bytes) into dir,
// which must exist and be empty, and returns its TOC. It runs as root to
// set owners and make devices.
func Unpack(ctx context.Context, ra io.ReaderAt, size int64, dir string, o Options) (toc *release.TOC, err error) {
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	toc, err = release.ReadTOC(ctx, release.ReaderAt(ra), size)
	if err != nil {
		return nil, err
	}
	if err := check(toc, o); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(des) > 0 {
		return nil, fmt.Errorf("unpack into %s: the directory is not empty", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	defer func() {
		if err != nil {
			removeContents(root)
		}
	}()
	skip := o.SkipDevices && !o.AllowDevices
	u := unpacker{ctx: ctx, root: root, ra: ra, toc: toc, made: map[string]bool{"": true}, skipDevices: skip}
	if err := u.run(o.Concurrency); err != nil {
		return nil, err
	}
	got, err := diskDigest(ctx, dir, toc, skip, o.Concurrency)
	if err != nil {
		return nil, err
	}
	if got != toc.TreeSHA256 {
		return nil, fmt.Errorf("%w: %s on disk, %s in the TOC", ErrDigest, got, toc.TreeSHA256)
	}
	return toc, nil
}

// diskDigest is the tree digest of dir as it is on disk; with
// skipDevices, the TOC's device entries stand in at their places (the
// tree on disk must then be the TOC's without its devices, in order).
func diskDigest(ctx context.Context, dir string, toc *release.TOC, skipDevices bool, workers int) (string, error) {
	if toc.Kind == release.KindStatic {
		disk, err := release.RootfsDirEntries(ctx, dir, workers)
		if err != nil {
			return "", err
		}
		return release.TreeDigest(disk), nil
	}
	if !skipDevices {
		return release.RootfsDirDigest(ctx, dir, workers)
	}
	disk, err := release.RootfsDirEntries(ctx, dir, workers)
	if err != nil {
		return "", err
	}
	all := make([]release.Entry, 0, len(toc.Entries))
	for i := range toc.Entries {
		if e := &toc.Entries[i]; isDevice(e) {
			all = append(all, *e)
			continue
		}
		if len(disk) == 0 {
			break // fewer entries on disk: the digest differs
		}
		all, disk = append(all, disk[0]), disk[1:]
	}
	all = append(all, disk...) // more on disk: the digest differs
	return release.RootfsTreeDigest(all), nil
}

func isDevice(e *release.Entry) bool {
	return e.Type == release.TypeChar || e.Type == release.TypeBlock
}

// check refuses, before anything is written, a release whose tree does not
// hold together: resolved with pathres as the static checks do.
func check(toc *release.TOC, o Options) error {
	if toc.Kind != release.KindRootfs && !(o.AllowStatic && toc.Kind == release.KindStatic) {
		return fmt.Errorf("%w: not a rootfs release", ErrRefused)
	}
	t := pathres.New()
	for i := range toc.Entries {
		e := &toc.Entries[i]
		k := pathres.Other
		switch e.Type {
		case release.TypeDir:
			k = pathres.Dir
		case release.TypeSymlink:
			k = pathres.Symlink
		case release.TypeChar, release.TypeBlock:
			if !o.AllowDevices && !o.SkipDevices {
				return fmt.Errorf("%w: device %q and devices are not allowed", ErrRefused, e.Path)
			}
		case release.TypeHardlink:
			// The TOC reader checked that the target is an earlier file
			// entry; it must also be that file on disk, not a path through
			// a symlink: resolved without following, it is itself.
			r, err := t.Resolve(e.Link, pathres.InRoot, false)
			if err != nil || r.Path() != e.Link || r.Kind() != pathres.Other {
				return fmt.Errorf("%w: hard link %q to %q", ErrRefused, e.Path, e.Link)
			}
		}
		if err := t.Add(e.Path, k, e.Link); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrRefused, e.Path, err)
		}
	}
	return nil
}

// removeContents removes everything below root, never following a symlink.
func removeContents(root *os.Root) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		root.RemoveAll(n)
	}
}

type unpacker struct {
	ctx         context.Context
	root        *os.Root
	ra          io.ReaderAt
	toc         *release.TOC
	made        map[string]bool // directories created
	skipDevices bool
}

func (u *unpacker) run(workers int) error {
	es := u.toc.Entries
	// 1. Directories, in path order (parents first), owner and mode later.
	for i := range es {
		if es[i].Type == release.TypeDir {
			if err := u.mkdir(es[i].Path); err != nil {
				return err
			}
		}
	}
	// 2. Regular files, frame by frame in parallel.
	if err := u.files(workers); err != nil {
		return err
	}
	// 3. Links, devices and fifos, once their targets exist.
	for i := range es {
		if err := u.other(&es[i]); err != nil {
			return err
		}
	}
	// 4. Directories' owners, modes and xattrs, deepest first.
	for i := len(es) - 1; i >= 0; i-- {
		if e := &es[i]; e.Type == release.TypeDir {
			if err := u.dirMeta(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *unpacker) mkdir(p string) error {
	if u.made[p] {
		return nil
	}
	if err := u.mkdir(parent(p)); err != nil {
		return err
	}
	if err := u.root.Mkdir(p, 0o700); err != nil {
		return err
	}
	u.made[p] = true
	return nil
}

func parent(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// fileMode is mode's permission bits as an os.FileMode.
func fileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	if mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (u *unpacker) other(e *release.Entry) error {
	if u.skipDevices && isDevice(e) {
		return nil
	}
	if err := u.mkdir(parent(e.Path)); err != nil {
		return err
	}
	switch e.Type {
	case release.TypeHardlink:
		return u.root.Link(e.Link, e.Path)
	case release.TypeSymlink:
		if err := u.root.Symlink(e.Link, e.Path); err != nil {
			return err
		}
		return u.root.Lchown(e.Path, int(e.UID), int(e.GID))
	case release.TypeChar, release.TypeBlock, release.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch e.Type {
		case release.TypeChar:
			mode = unix.S_IFCHR
		case release.TypeBlock:
			mode = unix.S_IFBLK
		}
		d, err := u.root.Open(parent(e.Path) + "/.")
		if parent(e.Path) == "" {
			d, err = u.root.Open(".")
		}
		if err != nil {
			return err
		}
		err = unix.Mknodat(int(d.Fd()), path.Base(e.Path), mode|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
		d.Close()
		if err != nil {
			return &os.PathError{Op: "mknod", Path: e.Path, Err: err}
		}
		if err := u.root.Lchown(e.Path, int(e.UID), int(e.GID)); err != nil {
			return err
		}
		return u.root.Chmod(e.Path, fileMode(e.Mode))
	}
	return nil
}

func (u *unpacker) dirMeta(e *release.Entry) error {
	d, err := u.root.Open(e.Path + "/.")
	if err != nil {
		return err
	}
	defer d.Close()
	return setMeta(d, e)
}

// setMeta sets an open file's owner, then its mode (chown clears the
// setuid and setgid bits), then its xattrs (chown clears
// security.capability).
func setMeta(f *os.File, e *release.Entry) error {
	fd := int(f.Fd())
	if err := unix.Fchown(fd, int(e.UID), int(e.GID)); err != nil {
		return &os.PathError{Op: "chown", Path: e.Path, Err: err}
	}
	if err := unix.Fchmod(fd, e.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: e.Path, Err: err}
	}
	for name, v := range e.Xattrs {
		if err := unix.Fsetxattr(fd, name, v, 0); err != nil {
			return &os.PathError{Op: "setxattr " + name, Path: e.Path, Err: err}
		}
	}
	return nil
}

// files writes every regular file, a frame (or a file of frames of its
// own) per job, with workers goroutines.
func (u *unpacker) files(workers int) error {
	var jobs [][]*release.Entry
	byFrame := map[int64]int{}
	for i := range u.toc.Entries {
		e := &u.toc.Entries[i]
		if e.Type != release.TypeFile {
			continue
		}
		if err := u.mkdir(parent(e.Path)); err != nil {
			return err
		}
		if e.Size == 0 || !e.Shared {
			jobs = append(jobs, []*release.Entry{e})
			continue
		}
		if j, ok := byFrame[e.FrameOffset]; ok {
			jobs[j] = append(jobs[j], e)
			continue
		}
		byFrame[e.FrameOffset] = len(jobs)
		jobs = append(jobs, []*release.Entry{e})
	}
	// Larger jobs first, so that a big file does not end the run alone.
	slices.SortStableFunc(jobs, func(a, b []*release.Entry) int {
		return int(min(max(b[0].FrameLength-a[0].FrameLength, -1), 1))
	})
	ctx, cancel := context.WithCancel(u.ctx)
	defer cancel()
	work := make(chan []*release.Entry)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*release.ChunkSize+release.GroupSize))
			defer dec.Close()
			var buf, raw []byte
			for job := range work {
				if err := u.job(ctx, dec, job, &buf, &raw); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return u.ctx.Err()
}

// job writes the files of one shared frame, or one file of its own frames.
func (u *unpacker) job(ctx context.Context, dec *zstd.Decoder, job []*release.Entry, buf, raw *[]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := job[0]
	if e.Size == 0 {
		return u.write(e, nil)
	}
	if !e.Shared {
		rc, err := release.OpenRange(ctx, release.ReaderAt(u.ra), e, 0, e.Size)
		if err != nil {
			return err
		}
		defer rc.Close()
		return u.write(e, rc)
	}
	*raw = slices.Grow((*raw)[:0], int(e.FrameLength))[:e.FrameLength]
	if _, err := u.ra.ReadAt(*raw, e.FrameOffset); err != nil {
		return err
	}
	out, err := dec.DecodeAll(*raw, (*buf)[:0])
	if err != nil {
		return fmt.Errorf("%w: frame at %d: %v", release.ErrCorrupt, e.FrameOffset, err)
	}
	*buf = out
	for _, e := range job {
		if e.InFrame+e.Size > int64(len(out)) {
			return fmt.Errorf("%w: %q lies outside its frame", release.ErrCorrupt, e.Path)
		}
		if err := u.write(e, bytes.NewReader(out[e.InFrame:e.InFrame+e.Size])); err != nil {
			return err
		}
	}
	return nil
}

// write creates the file e (never over anything: O_EXCL, and O_NOFOLLOW by
// os.Root for the last component), writes r, and sets its metadata.
func (u *unpacker) write(e *release.Entry, r io.Reader) error {
	f, err := u.root.OpenFile(e.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if r != nil {
		var n int64
		n, err = io.Copy(f, r)
		if err == nil && n != e.Size {
			err = fmt.Errorf("%w: %q holds %d bytes, want %d", release.ErrCorrupt, e.Path, n, e.Size)
		}
	}
	if err == nil {
		err = setMeta(f, e)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
