package release

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// rootfsTar builds a tar stream of hdrs; a regular file's content is its
// name repeated to its Size.
func rootfsTar(t testing.TB, hdrs ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			tw.Write(bytes.Repeat([]byte{h.Name[len(h.Name)-1]}, int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func packRootfs(t testing.TB, stream []byte) (*Result, []byte, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := PackRootfsTar(context.Background(), bytes.NewReader(stream), &out, RootfsOptions{ScratchDir: t.TempDir()})
	return res, out.Bytes(), err
}

// sampleRootfs has one entry of every kind a rootfs keeps.
func sampleRootfs() []*tar.Header {
	return []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 100,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
				"SCHILY.xattr.security.selinux": "system_u:object_r:bin_t:s0", "SCHILY.xattr.user.note": "x"}},
		{Name: "./tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "./etc/shadow", Typeflag: tar.TypeReg, Mode: 0o640, Gid: 42, Size: 70 << 10},
		{Name: "./usr/bin/zping", Typeflag: tar.TypeLink, Linkname: "./usr/bin/ping"},
		{Name: "./usr/bin/aping", Typeflag: tar.TypeLink, Linkname: "usr/bin/zping"},
		{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin"},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 8},
		{Name: "./run/initctl", Typeflag: tar.TypeFifo, Mode: 0o600},
		{Name: "./home/user", Typeflag: tar.TypeDir, Mode: 0o2750, Uid: 1000, Gid: 1000},
	}
}

func TestPackRootfsTar(t *testing.T) {
	res, art, err := packRootfs(t, rootfsTar(t, sampleRootfs()...))
	if err != nil {
		t.Fatal(err)
	}
	toc, err := Verify(context.Background(), bytes.NewReader(art), int64(len(art)))
	if err != nil {
		t.Fatal(err)
	}
	checkTOCJSON(t, toc)
	if toc.Kind != KindRootfs || toc.TreeSHA256 != res.TOC.TreeSHA256 {
		t.Fatalf("kind %q tree %s", toc.Kind, toc.TreeSHA256)
	}
	want := map[string]string{
		"bin": "symlink /usr/bin", "dev": "dir", "dev/null": "char 1 3", "dev/sda": "block 8 0",
		"etc": "dir", "etc/shadow": "file 640 0:42", "home": "dir", "home/user": "dir 2750 1000:1000",
		"run/initctl": "fifo", "tmp": "dir 1777",
		"usr/bin/aping": "file 4755 0:0 caps",
		"usr/bin/ping":  "hardlink usr/bin/aping", "usr/bin/zping": "hardlink usr/bin/aping",
	}
	for _, e := range toc.Entries {
		w, ok := want[e.Path]
		if !ok {
			continue
		}
		var got string
		switch e.Type {
		case TypeSymlink, TypeHardlink:
			got = e.Type + " " + e.Link
		case TypeChar, TypeBlock:
			got = e.Type + " " + itoa(e.DevMajor) + " " + itoa(e.DevMinor)
		case TypeDir:
			got = "dir"
			if e.Mode != 0o755 || e.UID != 0 || e.GID != 0 {
				got += " " + otoa(e.Mode)
			}
			if e.UID != 0 || e.GID != 0 {
				got += ori(e.UID, e.GID)
			}
		case TypeFile:
			got = "file " + otoa(e.Mode) + " " + ori(e.UID, e.GID)[1:]
			if len(e.Xattrs) > 0 {
				got += " caps"
				if len(e.Xattrs) != 2 || e.Xattrs["user.note"] == nil || e.Xattrs["security.selinux"] != nil {
					t.Errorf("xattrs %v: want security.capability and user.note only", e.Xattrs)
				}
			}
		default:
			got = e.Type
		}
		if got != w {
			t.Errorf("%s: %q, want %q", e.Path, got, w)
		}
		delete(want, e.Path)
	}
	if len(want) > 0 {
		t.Errorf("missing %v", want)
	}
	// The same tree in another order, with the content under another name
	// of the group of hard links, is the same release.
	h := sampleRootfs()
	h[1], h[4], h[5] = &tar.Header{Name: "usr/bin/zping", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 100, PAXRecords: h[1].PAXRecords},
		&tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeLink, Linkname: "usr/bin/zping"},
		&tar.Header{Name: "usr/bin/aping", Typeflag: tar.TypeLink, Linkname: "usr/bin/ping"}
	res2, _, err := packRootfs(t, rootfsTar(t, append(h[6:], h[:6]...)...))
	if err != nil {
		t.Fatal(err)
	}
	if res2.SHA256 != res.SHA256 {
		t.Fatal("the same tree in another order gave another release")
	}
}

func itoa(n uint32) string   { return fmt.Sprint(n) }
func otoa(m uint32) string   { return fmt.Sprintf("%o", m) }
func ori(u, g uint32) string { return fmt.Sprintf(" %d:%d", u, g) }

// TestRootfsFooterFlag: a reader tells a rootfs release by its footer flag,
// which must agree with the TOC's kind.
func TestRootfsFooterFlag(t *testing.T) {
	_, art, err := packRootfs(t, rootfsTar(t, sampleRootfs()...))
	if err != nil {
		t.Fatal(err)
	}
	flags := len(art) - FooterSize + 20
	if art[flags] != FlagRootfs {
		t.Fatalf("footer flags %d, want %d", art[flags], FlagRootfs)
	}
	art[flags] = 0
	if _, err := ReadTOC(context.Background(), ReaderAt(bytes.NewReader(art)), int64(len(art))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a rootfs TOC under a static footer: %v", err)
	}
	art[flags] = 2
	if _, err := ReadTOC(context.Background(), ReaderAt(bytes.NewReader(art)), int64(len(art))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown footer flag: %v", err)
	}
}

// TestRootfsTarRejects: what a rootfs upload refuses.
func TestRootfsTarRejects(t *testing.T) {
	for name, hs := range map[string][]*tar.Header{
		"absolute":        {{Name: "/etc/passwd", Typeflag: tar.TypeReg}},
		"dot-dot":         {{Name: "a/../../x", Typeflag: tar.TypeReg}},
		"under a symlink": {{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/"}, {Name: "etc/passwd", Typeflag: tar.TypeReg}},
		"hard link later": {{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"}, {Name: "f", Typeflag: tar.TypeReg}},
		"hard link out":   {{Name: "h", Typeflag: tar.TypeLink, Linkname: "../etc/passwd"}},
		"hard link dir":   {{Name: "d", Typeflag: tar.TypeDir}, {Name: "h", Typeflag: tar.TypeLink, Linkname: "d"}},
		"duplicate":       {{Name: "f", Typeflag: tar.TypeReg}, {Name: "./f", Typeflag: tar.TypeReg}},
		"socket-like":     {{Name: "x", Typeflag: 'S'}},
	} {
		if _, _, err := packRootfs(t, rootfsTar(t, hs...)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
