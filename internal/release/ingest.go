package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/release/pathres"
)

// Decompress detects gzip or zstd by magic number and returns a reader of
// the plain stream; anything else is passed through as is.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalidf("gzip: %v", err)
		}
		return zr, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(32<<20), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, invalidf("zstd: %v", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// Extract reads a tar stream (plain, gzip or zstd) and writes its tree under
// dir, which must exist and be empty. It never writes outside dir: absolute
// paths, "..", names that are not valid UTF-8 or hold control characters
// or backslashes (checkName), symlinks whose targets leave the tree by any
// route (resolved through the other links of the tree, once it is whole),
// paths through symlinks or files, hard links, devices, fifos and
// duplicate paths are rejected with ErrInvalid; trees over lim with
// ErrTooLarge. On error the caller removes dir.
func Extract(ctx context.Context, r io.Reader, dir string, lim Limits) error {
	zr, err := Decompress(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	x := extractor{dir: dir, lim: lim, tree: pathres.New()}
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
			// Links may point through links that came after them: the
			// whole tree is known only now.
			return checkLinks(x.tree)
		}
		if err != nil {
			return tarErr(err)
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
}

func tarErr(err error) error {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("the archive is truncated")
	case errors.Is(err, tar.ErrHeader):
		return invalidf("the body is not a tar archive")
	case errors.Is(err, zstd.ErrMagicMismatch), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum):
		return invalidf("the compressed stream is corrupt")
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err // a local I/O failure, not the client's
	}
	return invalidf("the archive cannot be read")
}

// extractor writes entries whose place in the tree it checked first: the
// tree (every entry so far, parents implied) is what decides, never the
// disk, so a write never goes through a symlink or lands on an entry of
// the upload.
type extractor struct {
	dir   string
	lim   Limits
	tree  *pathres.Tree
	bytes int64
	names int64 // bytes of paths and link targets
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name := strings.TrimPrefix(h.Name, "./")
	name = strings.TrimSuffix(name, "/")
	if name == "" || name == "." {
		if h.Typeflag == tar.TypeDir {
			return nil // the root itself
		}
		return invalidf("entry with an empty name")
	}
	if strings.HasPrefix(h.Name, "/") {
		return invalidf("absolute path %q", h.Name)
	}
	if err := checkName(name); err != nil {
		return err
	}
	kind := pathres.Other
	switch h.Typeflag {
	case tar.TypeDir:
		kind = pathres.Dir
	case tar.TypeSymlink:
		if err := CheckLink(name, h.Linkname); err != nil {
			return err
		}
		kind = pathres.Symlink
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeLink:
		return invalidf("hard link %q is not allowed", name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return invalidf("device or fifo %q is not allowed", name)
	default:
		return invalidf("entry %q has unsupported type %q", name, h.Typeflag)
	}
	if x.names += int64(len(name) + len(h.Linkname)); x.names > maxNameBytes {
		return fmt.Errorf("%w: more than %d bytes of names and link targets", ErrTooLarge, maxNameBytes)
	}
	if err := x.tree.Add(name, kind, h.Linkname); err != nil {
		return treeErr(name, err)
	}
	// Directories that a path implies are entries of the release too: they
	// count, or deep paths would make many more than MaxFiles.
	if x.lim.MaxFiles > 0 && int64(x.tree.Len()) > x.lim.MaxFiles {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, x.lim.MaxFiles)
	}
	dst := filepath.Join(x.dir, filepath.FromSlash(name))
	switch kind {
	case pathres.Dir:
		return os.MkdirAll(dst, 0o755)
	case pathres.Symlink:
		if err := x.mkParents(name); err != nil {
			return err
		}
		return os.Symlink(h.Linkname, dst)
	}
	return x.file(name, dst, h, r)
}

// mkParents makes the parents of name, which the tree holds as directories.
func (x *extractor) mkParents(name string) error {
	return os.MkdirAll(filepath.Dir(filepath.Join(x.dir, filepath.FromSlash(name))), 0o755)
}

func (x *extractor) file(name, dst string, h *tar.Header, r io.Reader) error {
	if h.Size < 0 {
		return invalidf("negative size on %q", name)
	}
	x.bytes += h.Size
	if x.lim.MaxBytes > 0 && x.bytes > x.lim.MaxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, x.lim.MaxBytes)
	}
	if err := x.mkParents(name); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(fileMode(uint32(h.Mode))))
	if err != nil {
		return err
	}
	return copyEntry(f, r, h.Size)
}

// tailReader remembers the last 1024 bytes read, to check that a tar stream
// ended with its end-of-archive marker rather than being cut at a header.
type tailReader struct {
	r    io.Reader
	n    int64
	last [1024]byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= len(t.last) {
		copy(t.last[:], p[n-len(t.last):n])
	} else if n > 0 {
		copy(t.last[:], t.last[n:])
		copy(t.last[len(t.last)-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *tailReader) trailer() bool {
	if t.n < 1024 || t.n%512 != 0 {
		return false
	}
	for _, b := range t.last {
		if b != 0 {
			return false
		}
	}
	return true
}

// copyEntry copies a tar entry's content r (size bytes) into f and closes
// f; a short entry is a truncated archive.
func copyEntry(f *os.File, r io.Reader, size int64) error {
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return tarErr(err)
	}
	if n != size {
		return invalidf("the archive is truncated")
	}
	return nil
}
