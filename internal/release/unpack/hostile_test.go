package unpack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/internal/release"
)

// outside is a directory holding a sentinel file and a root to unpack into.
type outside struct {
	base, root, sentinel string
	before               string
}

func newOutside(t testing.TB) *outside {
	base := t.TempDir()
	o := &outside{base: base, root: filepath.Join(base, "root"), sentinel: filepath.Join(base, "sentinel")}
	if err := os.WriteFile(o.sentinel, []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(o.root, 0o755); err != nil {
		t.Fatal(err)
	}
	o.before = o.state(t)
	return o
}

// state describes everything outside the root: each path's type, mode,
// owner, link count, size and content hash.
func (o *outside) state(t testing.TB) string {
	var b strings.Builder
	filepath.WalkDir(o.base, func(p string, d fs.DirEntry, err error) error {
		if p == o.root {
			return fs.SkipDir
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		sum := ""
		if d.Type().IsRegular() {
			c, _ := os.ReadFile(p)
			sum = fmt.Sprintf("%x", sha256.Sum256(c))
		}
		fmt.Fprintf(&b, "%s %o %d:%d n%d %d %s %d\n", p, st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, sum, st.Mtim.Nano())
		return nil
	})
	// The root itself: only its contents may change.
	var st syscall.Stat_t
	syscall.Lstat(o.root, &st)
	fmt.Fprintf(&b, "root %o %d:%d\n", st.Mode, st.Uid, st.Gid)
	return b.String()
}

func (o *outside) check(t testing.TB) {
	t.Helper()
	if after := o.state(t); after != o.before {
		t.Fatalf("outside the root changed:\nbefore:\n%s\nafter:\n%s", o.before, after)
	}
}

func (o *outside) empty(t testing.TB) {
	t.Helper()
	des, err := os.ReadDir(o.root)
	if err != nil || len(des) != 0 {
		t.Fatalf("the root holds %d entries after a failed unpack (%v)", len(des), err)
	}
}

func unpackBytes(art []byte, dir string, opts Options) (*release.TOC, error) {
	return Unpack(context.Background(), bytes.NewReader(art), int64(len(art)), dir, opts)
}

func dir(p string) release.Entry { return release.Entry{Path: p, Type: release.TypeDir, Mode: 0o755} }
func file(p string) release.Entry {
	return release.Entry{Path: p, Type: release.TypeFile, Mode: 0o4777, UID: 1234, GID: 1234}
}
func symlink(p, to string) release.Entry {
	return release.Entry{Path: p, Type: release.TypeSymlink, Mode: 0o777, Link: to, UID: 1234, GID: 1234}
}

func TestUnpackHostile(t *testing.T) {
	requireRoot(t)
	pw := func(p string) map[string][]byte { return map[string][]byte{p: []byte("pwned\n")} }
	cases := []struct {
		name     string
		entries  []release.Entry
		contents map[string][]byte
		opts     Options
		ok       bool // unpacks (harmlessly)
	}{
		{name: "absolute symlink then a file under it",
			entries: []release.Entry{symlink("etc", "/"), file("etc/sentinel")}, contents: pw("etc/sentinel")},
		{name: "absolute symlink to the outside dir then a file under it",
			entries: []release.Entry{symlink("a", "SENTINELDIR"), file("a/sentinel")}, contents: pw("a/sentinel")},
		{name: "relative symlink climbing out then a file under it",
			entries: []release.Entry{symlink("up", "../../../../../../.."), file("up/sentinel")}, contents: pw("up/sentinel")},
		{name: "chain of links then a file under it",
			entries: []release.Entry{symlink("l1", "l2"), symlink("l2", "l3"), symlink("l3", "/.."), file("l1/sentinel")}, contents: pw("l1/sentinel")},
		{name: "symlinked parent directory declared after the file",
			entries: []release.Entry{file("d/sentinel"), symlink("d", "..")}, contents: pw("d/sentinel")},
		{name: "dot-dot path", entries: []release.Entry{file("../sentinel")}, contents: pw("../sentinel")},
		{name: "dot-dot inside a path", entries: []release.Entry{dir("a"), file("a/../../sentinel")}, contents: pw("a/../../sentinel")},
		{name: "absolute path", entries: []release.Entry{file("/sentinel")}, contents: pw("/sentinel")},
		{name: "hard link to outside",
			entries: []release.Entry{{Path: "h", Type: release.TypeHardlink, Link: "../sentinel"}}},
		{name: "hard link to an absolute path",
			entries: []release.Entry{{Path: "h", Type: release.TypeHardlink, Link: "SENTINEL"}}},
		{name: "hard link to a later entry",
			entries: []release.Entry{{Path: "a", Type: release.TypeHardlink, Link: "b"}, file("b")}, contents: pw("b")},
		{name: "hard link through a symlinked parent",
			entries: []release.Entry{symlink("d", "SENTINELDIR"), {Path: "h", Type: release.TypeHardlink, Link: "d/sentinel"}}},
		{name: "hard link to a symlink to the outside",
			entries: []release.Entry{symlink("a", "SENTINEL"), {Path: "h", Type: release.TypeHardlink, Link: "a"}}},
		{name: "device node not allowed",
			entries: []release.Entry{{Path: "sda", Type: release.TypeBlock, Mode: 0o666, DevMajor: 8}}},
		{name: "duplicate path: a symlink then a file of the same name",
			entries: []release.Entry{symlink("x", "SENTINEL"), file("x")}, contents: pw("x")},
		{name: "content not matching the tree digest",
			entries: []release.Entry{dir("a"), {Path: "a/f", Type: release.TypeFile, Mode: 0o644,
				SHA256: strings.Repeat("ab", 32)}}, contents: map[string][]byte{"a/f": []byte("other")}},
		// These unpack: links may point anywhere, the unpacker never
		// follows them, and chown of a symlink changes the link.
		{name: "absolute symlink to the sentinel, owned by someone", ok: true,
			entries: []release.Entry{symlink("s", "SENTINEL")}},
		{name: "symlink to the outside dir and one through it", ok: true,
			entries: []release.Entry{symlink("a", "SENTINELDIR"), symlink("b", "a/sentinel")}},
		{name: "fifo", ok: true, entries: []release.Entry{{Path: "p", Type: release.TypeFifo, Mode: 0o4777, UID: 7}}},
		{name: "device node allowed: made inside", ok: true, opts: Options{AllowDevices: true},
			entries: []release.Entry{dir("dev"), {Path: "dev/sentinel", Type: release.TypeChar, Mode: 0o666, DevMajor: 1, DevMinor: 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newOutside(t)
			es := make([]release.Entry, len(c.entries))
			for i, e := range c.entries {
				e.Link = strings.NewReplacer("SENTINELDIR", o.base, "SENTINEL", o.sentinel).Replace(e.Link)
				es[i] = e
			}
			art := craft(t, es, c.contents)
			_, err := unpackBytes(art, o.root, c.opts)
			o.check(t)
			if c.ok {
				if err != nil {
					t.Fatalf("unpack: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a hostile release unpacked without an error")
			}
			o.empty(t)
			t.Logf("refused: %v", err)
		})
	}
}

func requireRoot(t testing.TB) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the rootfs unpacker tests run as root in CI")
		}
		t.Skip("needs root")
	}
}
