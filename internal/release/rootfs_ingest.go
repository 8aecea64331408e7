package release

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/release/pathres"
)

// RootfsOptions tune a rootfs pack; none of them changes the bytes produced.
type RootfsOptions struct {
	Concurrency int    // compressing goroutines; 0 means GOMAXPROCS
	Limits      Limits // entries and bytes, as for static uploads (zero: no limit)
	ScratchDir  string // where the stream's larger contents are spooled while sorting; "" is os.TempDir()
}

// maxSmallMemory bounds the contents of small files a rootfs ingest keeps
// in memory; past it they are spooled to ScratchDir like larger ones.
var maxSmallMemory int64 = 256 << 20

// PackRootfsTar reads a tar stream (plain, gzip or zstd, detected by magic
// number) holding a Linux root filesystem, in any entry order, and writes
// the canonical rootfs release to w (docs/format.md, "Rootfs releases").
// It keeps owners, full modes, hard links, devices, fifos, symlinks with
// any target and the xattrs KeepXattr names; mtimes and user and group
// names are not kept. It refuses with ErrInvalid absolute names, "..",
// names against the rules of the format, entries under a symlink or a file,
// duplicate paths, hard links to anything but an earlier regular file of
// the stream, other entry types, and truncated streams; over opts.Limits
// with ErrTooLarge.
func PackRootfsTar(ctx context.Context, r io.Reader, w io.Writer, opts RootfsOptions) (*Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	scratch, err := os.MkdirTemp(opts.ScratchDir, "rootfs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	in := rootfsIngest{scratch: scratch, lim: opts.Limits, tree: pathres.New(), byPath: map[string]int{}}
	if err := in.read(ctx, r); err != nil {
		return nil, err
	}
	srcs := in.canonical()
	p := newPacker(ctx, w, opts.Concurrency)
	p.rootfs = true
	return p.run(func(fn func(*srcEntry) error) error {
		for _, s := range srcs {
			if s.Type == TypeFile && s.Size > 0 && s.Size < SmallFile && s.data == nil {
				if s.data, err = readSmall(s.abs, s.Size); err != nil {
					return err
				}
			}
			if err := fn(s); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// rootfsIngest collects the entries of a rootfs tar stream.
type rootfsIngest struct {
	scratch string
	lim     Limits
	tree    *pathres.Tree
	srcs    []*srcEntry
	byPath  map[string]int // index in srcs
	group   []int          // hard links: index of the file each entry links to (itself for files)
	bytes   int64
	memory  int64
	names   int64
}

func (in *rootfsIngest) read(ctx context.Context, r io.Reader) error {
	zr, err := Decompress(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	tail := &tailReader{r: zr}
	tr := tar.NewReader(tail)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return invalidf("the archive is empty")
			}
			if !tail.trailer() {
				return invalidf("the archive is truncated (no end-of-archive marker)")
			}
			return nil
		}
		if err != nil {
			return tarErr(err)
		}
		if err := in.entry(h, tr); err != nil {
			return err
		}
	}
}

// rootfsName turns a tar name into a path of the tree: "./" prefixes and a
// trailing "/" go; "" is the root itself. Absolute names are refused.
func rootfsName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", invalidf("absolute path %q", name)
	}
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	name = strings.TrimSuffix(name, "/")
	if name == "." {
		name = ""
	}
	if name != "" {
		if err := checkName(name); err != nil {
			return "", err
		}
	}
	return name, nil
}

func (in *rootfsIngest) entry(h *tar.Header, r io.Reader) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := rootfsName(h.Name)
	if err != nil {
		return err
	}
	if name == "" {
		if h.Typeflag == tar.TypeDir {
			return nil // the root: its owner and mode are the unpacker's target's
		}
		return invalidf("entry with an empty name")
	}
	if h.Uid < 0 || h.Gid < 0 || h.Uid > 1<<32-1 || h.Gid > 1<<32-1 {
		return invalidf("%q has an owner out of range", name)
	}
	e := Entry{Path: name, Mode: uint32(h.Mode & 0o7777), UID: uint32(h.Uid), GID: uint32(h.Gid)}
	kind := pathres.Other
	switch h.Typeflag {
	case tar.TypeDir:
		e.Type, kind = TypeDir, pathres.Dir
	case tar.TypeReg, tar.TypeRegA:
		e.Type = TypeFile
	case tar.TypeSymlink:
		if err := checkRootfsLink(name, h.Linkname); err != nil {
			return err
		}
		e.Type, e.Mode, e.Link, kind = TypeSymlink, 0o777, h.Linkname, pathres.Symlink
	case tar.TypeLink:
		e.Type = TypeHardlink
	case tar.TypeChar, tar.TypeBlock:
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<32-1 || h.Devminor > 1<<32-1 {
			return invalidf("device %q has numbers out of range", name)
		}
		e.Type, e.DevMajor, e.DevMinor = TypeChar, uint32(h.Devmajor), uint32(h.Devminor)
		if h.Typeflag == tar.TypeBlock {
			e.Type = TypeBlock
		}
	case tar.TypeFifo:
		e.Type = TypeFifo
	default:
		return invalidf("entry %q has unsupported type %q", name, h.Typeflag)
	}
	if e.Type == TypeFile || e.Type == TypeDir {
		if e.Xattrs, err = tarXattrs(name, h); err != nil {
			return err
		}
	}
	if in.names += int64(len(name) + len(h.Linkname)); in.names > maxNameBytes {
		return fmt.Errorf("%w: more than %d bytes of names and link targets", ErrTooLarge, maxNameBytes)
	}
	if err := in.tree.Add(name, kind, e.Link); err != nil {
		return treeErr(name, err)
	}
	if in.lim.MaxFiles > 0 && int64(in.tree.Len()) > in.lim.MaxFiles {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, in.lim.MaxFiles)
	}
	i := len(in.srcs)
	src := &srcEntry{Entry: e}
	in.srcs = append(in.srcs, src)
	in.byPath[name] = i
	in.group = append(in.group, i)
	switch e.Type {
	case TypeHardlink:
		target, err := rootfsName(h.Linkname)
		if err != nil || target == "" {
			return invalidf("hard link %q has a bad target %q", name, h.Linkname)
		}
		j, ok := in.byPath[target]
		if !ok || (in.srcs[j].Type != TypeFile && in.srcs[j].Type != TypeHardlink) {
			return invalidf("hard link %q points to %q, which is not an earlier file of the archive", name, target)
		}
		in.group[i] = in.group[j]
	case TypeFile:
		return in.content(src, h, r)
	}
	return nil
}

// checkRootfsLink accepts a symlink target of a rootfs: any path, absolute
// ones included (the unpacker resolves every path inside its root), with
// the characters a name may hold.
func checkRootfsLink(name, target string) error {
	switch {
	case target == "":
		return invalidf("symlink %q has an empty target", name)
	case len(target) > maxPath:
		return invalidf("symlink %q has a target longer than %d bytes", name, maxPath)
	case strings.ContainsRune(target, 0):
		return invalidf("symlink %q has a NUL in its target", name)
	}
	if err := checkText(target); err != nil {
		return invalidf("symlink %q: its target %s", name, err)
	}
	return nil
}

// tarXattrs returns the kept extended attributes of h.
func tarXattrs(name string, h *tar.Header) (map[string][]byte, error) {
	var x map[string][]byte
	for k, v := range h.PAXRecords {
		attr, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !KeepXattr(attr) {
			continue
		}
		if err := checkXattr(attr, []byte(v)); err != nil {
			return nil, fmt.Errorf("%w (on %q)", err, name)
		}
		if x == nil {
			x = map[string][]byte{}
		}
		x[attr] = []byte(v)
	}
	return x, nil
}

// content keeps a regular file's content: in memory if small (within
// maxSmallMemory), otherwise in a scratch file.
func (in *rootfsIngest) content(src *srcEntry, h *tar.Header, r io.Reader) error {
	if h.Size < 0 {
		return invalidf("negative size on %q", src.Path)
	}
	src.Size = h.Size
	src.ContentType = ContentType(src.Path)
	in.bytes += h.Size
	if in.lim.MaxBytes > 0 && in.bytes > in.lim.MaxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, in.lim.MaxBytes)
	}
	if h.Size == 0 {
		return nil
	}
	if h.Size < SmallFile && in.memory+h.Size <= maxSmallMemory {
		in.memory += h.Size
		src.data = make([]byte, h.Size)
		if _, err := io.ReadFull(r, src.data); err != nil {
			return tarErr(err)
		}
		return nil
	}
	src.abs = filepath.Join(in.scratch, strconv.Itoa(len(in.srcs)-1))
	f, err := os.OpenFile(src.abs, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return copyEntry(f, r, h.Size)
}

// canonical returns the entries in path order, each group of hard links
// laid out canonically: the first path of the group, in that order, is
// the file (with the content, mode, owner and xattrs of the group's
// file), the others are hard links to it. So the release does not depend
// on which name the stream gave the content.
func (in *rootfsIngest) canonical() []*srcEntry {
	// Directories that paths imply without an entry of their own are
	// entries of the release (0755, root's), as tar -x makes them.
	for _, s := range slices.Clone(in.srcs) {
		for d := path.Dir(s.Path); d != "."; d = path.Dir(d) {
			if _, ok := in.byPath[d]; ok {
				break
			}
			in.byPath[d] = len(in.srcs)
			in.group = append(in.group, len(in.srcs))
			in.srcs = append(in.srcs, &srcEntry{Entry: Entry{Path: d, Type: TypeDir, Mode: 0o755}})
		}
	}
	first := map[int]int{} // group file -> its first path in order
	for i, g := range in.group {
		if in.srcs[i].Type != TypeFile && in.srcs[i].Type != TypeHardlink {
			continue
		}
		if f, ok := first[g]; !ok || in.srcs[i].Path < in.srcs[f].Path {
			first[g] = i
		}
	}
	files := map[int]srcEntry{} // the group files, before any changes
	for g := range first {
		files[g] = *in.srcs[g]
	}
	for i, g := range in.group {
		s := in.srcs[i]
		if s.Type != TypeFile && s.Type != TypeHardlink {
			continue
		}
		f := first[g]
		if i == f {
			if i != g { // a link of the stream becomes the file
				file := files[g]
				path := s.Path
				s.Entry = file.Entry
				s.Path, s.ContentType = path, ContentType(path)
				s.abs, s.data = file.abs, file.data
			}
			continue
		}
		*s = srcEntry{Entry: Entry{Path: s.Path, Type: TypeHardlink, Link: in.srcs[f].Path}}
	}
	srcs := slices.Clone(in.srcs)
	slices.SortFunc(srcs, func(a, b *srcEntry) int { return strings.Compare(a.Path, b.Path) })
	return srcs
}
