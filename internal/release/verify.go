package release

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Verify checks a whole artifact of the given size: its TOC, that the data
// frames decode to a tar stream whose entries, modes, links and contents match
// the TOC in order and hash to TreeSHA256, and that every file's recorded
// frames hold its content. It returns the TOC.
func Verify(ctx context.Context, ra io.ReaderAt, size int64) (*TOC, error) {
	rr := ReaderAt(ra)
	toc, err := ReadTOC(ctx, rr, size)
	if err != nil {
		return nil, err
	}
	d, err := zstd.NewReader(io.NewSectionReader(ra, 0, toc.DataLength), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	counted := &countWriter{}
	tr := tar.NewReader(io.TeeReader(d, counted))
	for i := range toc.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := verifyEntry(tr, &toc.Entries[i]); err != nil {
			return nil, err
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, corruptf("tar stream has entries the TOC lacks")
	}
	if _, err := io.Copy(io.Discard, io.TeeReader(d, counted)); err != nil {
		return nil, corruptf("data frames: %v", err)
	}
	if counted.n != toc.TarLength || toc.Digest() != toc.TreeSHA256 {
		return nil, corruptf("tar stream does not match tree_sha256")
	}
	for i := range toc.Entries {
		e := &toc.Entries[i]
		if e.Type != TypeFile {
			continue
		}
		rc, err := OpenRange(ctx, rr, e, 0, e.Size)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return toc, nil
}

func verifyEntry(tr *tar.Reader, e *Entry) error {
	h, err := tr.Next()
	if err != nil {
		return corruptf("tar stream ends before %q: %v", e.Path, err)
	}
	want := tarHeader(e)
	if h.Name != want.Name || h.Typeflag != want.Typeflag || h.Mode != want.Mode ||
		h.Size != want.Size || h.Linkname != want.Linkname || h.Uid != want.Uid || h.Gid != want.Gid ||
		h.Devmajor != want.Devmajor || h.Devminor != want.Devminor || !sameXattrs(h, want) {
		return corruptf("tar entry %q does not match the TOC entry %q", h.Name, e.Path)
	}
	if e.Type != TypeFile {
		return nil
	}
	hs := sha256.New()
	if _, err := io.Copy(hs, tr); err != nil {
		return corruptf("content of %q: %v", e.Path, err)
	}
	if hex.EncodeToString(hs.Sum(nil)) != e.SHA256 {
		return corruptf("content of %q does not match its sha256", e.Path)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
