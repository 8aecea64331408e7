package release

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// diskSource gives Assemble the contents of a tree on disk and the frames
// of stored artifacts (held in memory, by sha256).
type diskSource struct {
	dir     string
	stored  map[FrameKey]StoredRef
	arts    map[string][]byte
	reads   int // ranged reads of stored artifacts
	opened  int // contents opened
	corrupt bool
}

func (s *diskSource) store(res *Result, art []byte) {
	if s.stored == nil {
		s.stored, s.arts = map[FrameKey]StoredRef{}, map[string][]byte{}
	}
	s.arts[res.SHA256] = art
	for _, f := range StoredFrames(res.TOC) {
		s.stored[f.Key] = StoredRef{Release: res.SHA256, Offset: f.Offset, Length: f.Length}
	}
}

func (s *diskSource) Stored(k FrameKey) (StoredRef, bool) { r, ok := s.stored[k]; return r, ok }

func (s *diskSource) ReadStored(_ context.Context, rel string, off, n int64) (io.ReadCloser, error) {
	s.reads++
	return io.NopCloser(bytes.NewReader(s.arts[rel][off : off+n])), nil
}

func (s *diskSource) Open(_ context.Context, e *Entry) (io.ReadCloser, error) {
	s.opened++
	b, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(e.Path)))
	if s.corrupt && len(b) > 0 {
		b[0] ^= 1
	}
	return io.NopCloser(bytes.NewReader(b)), err
}

// treeEntries is a packed tree's entries as a manifest gives them: no
// places, no content types.
func treeEntries(toc *TOC) []Entry {
	var es []Entry
	for _, e := range toc.Entries {
		es = append(es, Entry{Path: e.Path, Type: e.Type, Mode: e.Mode, Size: e.Size, SHA256: e.SHA256, Link: e.Link})
	}
	return es
}

func assemble(t *testing.T, entries []Entry, src Source) (*Result, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Assemble(t.Context(), entries, &buf, src, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res, buf.Bytes()
}

// TestAssembleMatchesPack: assembling a tree from its entries gives the
// bytes of a cold pack, compressing every frame, copying every frame of a
// stored pack of the same tree, or a mix after edits.
func TestAssembleMatchesPack(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	cold, art := pack(t, dir, PackOptions{})

	src := &diskSource{dir: dir}
	res, got := assemble(t, treeEntries(cold.TOC), src)
	if res.SHA256 != cold.SHA256 || !bytes.Equal(got, art) || res.Reused != 0 {
		t.Fatalf("assembled without stored frames: %s (reused %d), cold pack %s", res.SHA256, res.Reused, cold.SHA256)
	}

	var frames int64
	for _, f := range StoredFrames(cold.TOC) {
		frames += f.Length
	}
	if frames != cold.TOC.DataLength {
		t.Fatalf("StoredFrames covers %d of %d data bytes", frames, cold.TOC.DataLength)
	}
	src = &diskSource{dir: dir}
	src.store(cold, art)
	res, _ = assemble(t, treeEntries(cold.TOC), src)
	if res.SHA256 != cold.SHA256 || res.Reused != cold.TOC.DataLength || src.opened != 0 || src.reads != 1 {
		t.Fatalf("assembled from its own stored frames: %s, reused %d of %d, %d contents opened, %d ranged reads",
			res.SHA256, res.Reused, cold.TOC.DataLength, src.opened, src.reads)
	}

	// Edits: a file inserted first in path order, a changed small file.
	os.WriteFile(filepath.Join(dir, "0-first.txt"), []byte("inserted"), 0o644)
	os.WriteFile(filepath.Join(dir, "assets/js/chunk-150.js"), []byte("changed"), 0o644)
	cold2, art2 := pack(t, dir, PackOptions{})
	res, got = assemble(t, treeEntries(cold2.TOC), src)
	if res.SHA256 != cold2.SHA256 || !bytes.Equal(got, art2) {
		t.Fatalf("assembled after edits: %s, cold pack %s", res.SHA256, cold2.SHA256)
	}
	if res.Reused == 0 || res.Reused >= cold2.TOC.DataLength {
		t.Errorf("after edits reused %d of %d bytes", res.Reused, cold2.TOC.DataLength)
	}
	t.Logf("after edits: reused %d of %d compressed bytes", res.Reused, cold2.TOC.DataLength)
}

// TestAssembleChecksContents: a content that is not its sha256 fails the
// assembly (ErrCorrupt); entries out of order or escaping links are refused.
func TestAssembleChecksContents(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	cold, _ := pack(t, dir, PackOptions{})
	_, err := Assemble(t.Context(), treeEntries(cold.TOC), io.Discard, &diskSource{dir: dir, corrupt: true}, PackOptions{})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("a corrupt content: %v, want ErrCorrupt", err)
	}
	es := treeEntries(cold.TOC)
	es[0], es[1] = es[1], es[0]
	if _, err := Assemble(t.Context(), es, io.Discard, &diskSource{dir: dir}, PackOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unsorted entries: %v, want ErrInvalid", err)
	}
	es = []Entry{{Path: "a", Type: TypeSymlink, Mode: 0o777, Link: "b"}, {Path: "b", Type: TypeSymlink, Mode: 0o777, Link: "../x"}}
	if _, err := Assemble(t.Context(), es, io.Discard, &diskSource{dir: dir}, PackOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a link leaving the tree: %v, want ErrInvalid", err)
	}
}

// FuzzStoredFrames: the frames StoredFrames finds from any TOC that reads
// lie inside its data frames, and do not overlap.
func FuzzStoredFrames(f *testing.F) {
	art := seedArtifact(f)
	f.Add(art[len(art)-4096:])
	f.Fuzz(func(t *testing.T, b []byte) {
		toc, err := ReadTOC(context.Background(), ReaderAt(bytes.NewReader(b)), int64(len(b)))
		if err != nil {
			return
		}
		seen := map[int64]bool{}
		for _, fr := range StoredFrames(toc) {
			if fr.Offset < 0 || fr.Length <= 0 || fr.Offset+fr.Length > toc.DataLength || seen[fr.Offset] {
				t.Fatalf("frame %+v of data length %d", fr, toc.DataLength)
			}
			seen[fr.Offset] = true
		}
	})
}
