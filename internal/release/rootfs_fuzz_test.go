package release

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzPackRootfsTar feeds arbitrary tar streams to the rootfs ingester: it
// must fail with ErrInvalid or ErrTooLarge or make a release that reads
// back, verifies, and holds only clean relative paths; the same stream
// packs to the same bytes again.
func FuzzPackRootfsTar(f *testing.F) {
	f.Add(rootfsTar(f, sampleRootfs()...))
	f.Add(rootfsTar(f, &tar.Header{Name: "../x", Typeflag: tar.TypeReg}))
	f.Add(rootfsTar(f, &tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/"},
		&tar.Header{Name: "a/b", Typeflag: tar.TypeReg}))
	f.Add(rootfsTar(f, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"},
		&tar.Header{Name: "f", Typeflag: tar.TypeReg}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		var out bytes.Buffer
		lim := RootfsOptions{Limits: Limits{MaxFiles: 1000, MaxBytes: 1 << 20}, ScratchDir: t.TempDir(), Concurrency: 1}
		res, err := PackRootfsTar(ctx, bytes.NewReader(b), &out, lim)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("not a client error: %v", err)
			}
			return
		}
		art := out.Bytes()
		toc, err := Verify(ctx, bytes.NewReader(art), int64(len(art)))
		if err != nil {
			t.Fatalf("a packed rootfs does not verify: %v", err)
		}
		if toc.Kind != KindRootfs || toc.TreeSHA256 != res.TOC.TreeSHA256 {
			t.Fatalf("kind %q", toc.Kind)
		}
		for _, e := range toc.Entries {
			if err := checkName(e.Path); err != nil {
				t.Fatalf("entry %q: %v", e.Path, err)
			}
		}
		var again bytes.Buffer
		if _, err := PackRootfsTar(ctx, bytes.NewReader(b), &again, lim); err != nil || !bytes.Equal(again.Bytes(), art) {
			t.Fatalf("a second pack differs (%v)", err)
		}
	})
}

// FuzzRootfsTOCJSON holds the hand-written TOC encoder equal to
// encoding/json on the fields of rootfs entries.
func FuzzRootfsTOCJSON(f *testing.F) {
	f.Add("rootfs", uint32(1000), uint32(0), uint32(8), uint32(1), "security.capability", []byte{1, 0, 0, 2}, "user.<&>ü")
	f.Fuzz(func(t *testing.T, kind string, uid, gid, major, minor uint32, x1 string, v []byte, x2 string) {
		if v == nil {
			v = []byte{}
		}
		toc := &TOC{Version: 1, Kind: kind, Entries: []Entry{
			{Path: "a", Type: TypeChar, UID: uid, GID: gid, DevMajor: major, DevMinor: minor},
			{Path: "b", Type: TypeFile, Xattrs: map[string][]byte{x1: v, x2: []byte("x")}},
			{Path: "c", Type: TypeFile, Xattrs: map[string][]byte{}},
		}}
		checkTOCJSON(t, toc)
	})
}
