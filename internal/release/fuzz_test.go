package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func seedArtifact(f *testing.F) []byte {
	dir := f.TempDir()
	makeTree(f, dir)
	_, art := pack(f, dir, PackOptions{})
	return art
}

// FuzzReadTOC feeds arbitrary artifacts to the footer and TOC reader and to
// the file reader: they must fail cleanly, never panic or over-allocate.
func FuzzReadTOC(f *testing.F) {
	art := seedArtifact(f)
	f.Add(art[len(art)-4096:])
	f.Add(art[len(art)-FooterSize:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		rr := ReaderAt(bytes.NewReader(b))
		toc, err := ReadTOC(ctx, rr, int64(len(b)))
		if err != nil {
			return
		}
		for i := range toc.Entries {
			if toc.Entries[i].Type == TypeFile {
				ReadFile(ctx, rr, &toc.Entries[i])
			}
		}
	})
}

// FuzzParseFooter checks the footer parser on arbitrary 40-byte inputs.
func FuzzParseFooter(f *testing.F) {
	f.Add(encodeFooter(Footer{Version: 1, TOCOffset: 100, TOCLength: 50}), int64(190))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		ft, err := ParseFooter(b, size)
		if err == nil && (ft.TOCOffset < 0 || ft.TOCOffset+ft.TOCLength+FooterSize != size) {
			t.Fatalf("accepted a footer outside the artifact: %+v size %d", ft, size)
		}
	})
}

// FuzzExtract feeds arbitrary bodies to the tar ingester: it must never
// write outside its directory or panic, fail only with ErrInvalid or
// ErrTooLarge (the client's mistakes), and a tree it accepts must pack into
// a release that verifies, with every link resolving inside the tree on
// disk.
func FuzzExtract(f *testing.F) {
	f.Add(mkTar(f, reg("index.html", "hi"), reg("a/b", "b")))
	f.Add(mkTar(f, tarEntry{name: "l", typ: '2', link: "../x"}))
	f.Add(mkTar(f, link("a/up", ".."), link("a/esc", "up/../..")))
	f.Add(mkTar(f, dirEntry("e/f/"), link("d/l", "../e/f"), link("d/m", "l/../.."), reg("e/g", "g")))
	f.Add(mkTar(f, dirEntry("x/y/"), reg("x", "x")))
	f.Add(mkTar(f, reg("caf\xe9", "x")))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := os.MkdirTemp("", "fuzz-extract")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(root)
		dir := root + "/x"
		if err := mkdir(dir); err != nil {
			t.Fatal(err)
		}
		err = Extract(context.Background(), bytes.NewReader(b), dir, Limits{MaxFiles: 100, MaxBytes: 1 << 20})
		entries, _ := readDir(root)
		if len(entries) != 1 {
			t.Fatalf("extract wrote outside its directory: %v", entries)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("not the client's mistake: %v", err)
			}
			return
		}
		var art bytes.Buffer
		res, err := PackDir(context.Background(), dir, &art, PackOptions{})
		if err != nil {
			t.Fatalf("an accepted upload does not pack: %v", err)
		}
		if _, err := Verify(context.Background(), bytes.NewReader(art.Bytes()), int64(art.Len())); err != nil {
			t.Fatalf("an accepted upload makes a release that fails verify: %v", err)
		}
		for _, e := range res.TOC.Entries {
			if e.Type != TypeSymlink {
				continue
			}
			real, err := filepath.EvalSymlinks(filepath.Join(dir, e.Path))
			if err == nil && real != dir && !strings.HasPrefix(real, dir+"/") {
				t.Fatalf("link %q -> %q resolves to %s, outside the tree", e.Path, e.Link, real)
			}
		}
	})
}

// FuzzTOCJSON holds the hand-written TOC encoder equal to encoding/json,
// which defines the format, on arbitrary strings and numbers.
func FuzzTOCJSON(f *testing.F) {
	f.Add("index.html", "text/html; charset=utf-8", "", int64(12), int64(0), int64(77), true, uint32(0o644))
	f.Add("a/<b>&\"c\\\"\x00\u2028ü\xff", "", "../x", int64(-1), int64(1)<<62, int64(0), false, uint32(0o755))
	f.Fuzz(func(t *testing.T, path, ctype, link string, size, off, n int64, shared bool, mode uint32) {
		toc := &TOC{Version: 1, TreeSHA256: link, DataLength: off, TarLength: size, Entries: []Entry{
			{Path: path, Type: TypeFile, Mode: mode, Size: size, SHA256: ctype, ContentType: ctype, Link: link,
				FrameOffset: off, FrameLength: n, Shared: shared, InFrame: size ^ n, Chunks: []int64{n, off}},
			{Path: link, Type: path, Chunks: []int64{}},
		}}
		checkTOCJSON(t, toc)
	})
}

func checkTOCJSON(t *testing.T, toc *TOC) {
	t.Helper()
	want, err := json.Marshal(toc)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendTOCJSON(nil, toc); !bytes.Equal(got, want) {
		t.Fatalf("TOC JSON differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestTOCJSON(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	res, _ := pack(t, dir, PackOptions{})
	checkTOCJSON(t, res.TOC)
	checkTOCJSON(t, &TOC{Version: 1})
	checkTOCJSON(t, &TOC{Version: 1, Entries: []Entry{}})
}
