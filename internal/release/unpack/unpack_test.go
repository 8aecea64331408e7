package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/release"
)

// sample is a small root filesystem with one entry of every kind kept.
func sample(t testing.TB) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	big := bytes.Repeat([]byte("0123456789abcdef"), 600<<10/16) // frames of its own
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"},
		{Name: "./usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 5,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		{Name: "./usr/bin/ping6", Typeflag: tar.TypeLink, Linkname: "./usr/bin/ping"},
		{Name: "./usr/lib/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(big))},
		{Name: "./etc/resolv.conf", Typeflag: tar.TypeSymlink, Linkname: "/run/resolv.conf"},
		{Name: "./etc/shadow", Typeflag: tar.TypeReg, Mode: 0o640, Gid: 42, Size: 5},
		{Name: "./tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "./srv/ro/", Typeflag: tar.TypeDir, Mode: 0o555, Uid: 33, Gid: 33,
			PAXRecords: map[string]string{"SCHILY.xattr.user.origin": "test"}},
		{Name: "./srv/ro/f", Typeflag: tar.TypeReg, Mode: 0o2700, Uid: 33, Gid: 33, Size: 5},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./dev/loop9", Typeflag: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 9},
		{Name: "./run/initctl", Typeflag: tar.TypeFifo, Mode: 0o600},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch {
		case h.Name == "./usr/lib/big":
			tw.Write(big)
		case h.Size > 0:
			tw.Write([]byte("hello"))
		}
	}
	tw.Close()
	var art bytes.Buffer
	if _, err := release.PackRootfsTar(context.Background(), &b, &art, release.RootfsOptions{ScratchDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return art.Bytes()
}

func TestUnpackKeepsEverything(t *testing.T) {
	requireRoot(t)
	art := sample(t)
	o := newOutside(t)
	toc, err := unpackBytes(art, o.root, Options{AllowDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	o.check(t)
	st := func(p string) *syscall.Stat_t {
		var s syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(o.root, p), &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	if s := st("usr/bin/ping"); s.Mode != unix.S_IFREG|0o4755 || s.Nlink != 2 || s.Ino != st("usr/bin/ping6").Ino {
		t.Errorf("ping: mode %o, %d links", s.Mode, s.Nlink)
	}
	if v := make([]byte, 64); true {
		n, err := unix.Lgetxattr(filepath.Join(o.root, "usr/bin/ping"), "security.capability", v)
		if err != nil || n != 20 {
			t.Errorf("ping capability: %d bytes, %v", n, err)
		}
	}
	if s := st("srv/ro"); s.Mode != unix.S_IFDIR|0o555 || s.Uid != 33 {
		t.Errorf("srv/ro: %o %d", s.Mode, s.Uid)
	}
	if s := st("srv/ro/f"); s.Mode != unix.S_IFREG|0o2700 || s.Gid != 33 {
		t.Errorf("srv/ro/f: %o %d", s.Mode, s.Gid)
	}
	if s := st("tmp"); s.Mode != unix.S_IFDIR|0o1777 {
		t.Errorf("tmp: %o", s.Mode)
	}
	if s := st("dev/loop9"); s.Mode != unix.S_IFBLK|0o660 || s.Rdev != unix.Mkdev(7, 9) || s.Gid != 6 {
		t.Errorf("dev/loop9: %o %x", s.Mode, s.Rdev)
	}
	if s := st("run/initctl"); s.Mode != unix.S_IFIFO|0o600 {
		t.Errorf("initctl: %o", s.Mode)
	}
	if l, _ := os.Readlink(filepath.Join(o.root, "etc/resolv.conf")); l != "/run/resolv.conf" {
		t.Errorf("resolv.conf -> %q", l)
	}
	// tar --zstd -xpf of the same artifact gives the same tree.
	x := t.TempDir()
	f := filepath.Join(t.TempDir(), "r.tar.zst")
	os.WriteFile(f, art, 0o644)
	if out, err := exec.Command("tar", "--zstd", "--xattrs", "--xattrs-include=*", "-xpf", f, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	got, err := release.RootfsDirDigest(context.Background(), x, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got != toc.TreeSHA256 {
		t.Errorf("tar -xpf gives tree %s, the release has %s", got, toc.TreeSHA256)
	}
	// A release and its unpacked tree pack back to the same release.
	var again bytes.Buffer
	if res, err := release.PackRootfsDir(context.Background(), o.root, &again, release.RootfsOptions{ScratchDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	} else if !bytes.Equal(again.Bytes(), art) {
		t.Errorf("re-pack of the unpacked tree: %s, a different release", res.SHA256)
	}
}

func TestUnpackNotEmpty(t *testing.T) {
	requireRoot(t)
	o := newOutside(t)
	os.WriteFile(filepath.Join(o.root, "x"), nil, 0o644)
	if _, err := unpackBytes(sample(t), o.root, Options{AllowDevices: true}); err == nil {
		t.Fatal("unpacked into a directory that is not empty")
	}
}

// TestUnpackSkipDevices: with SkipDevices a release holding devices
// unpacks without them (nothing made on the host), and the tree is still
// verified: the TOC's device entries stand in for them, everything else
// must be on disk as the TOC says.
func TestUnpackSkipDevices(t *testing.T) {
	requireRoot(t)
	o := newOutside(t)
	toc, err := unpackBytes(sample(t), o.root, Options{SkipDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	o.check(t)
	for _, p := range []string{"dev/null", "dev/loop9"} {
		if _, err := os.Lstat(filepath.Join(o.root, p)); !os.IsNotExist(err) {
			t.Errorf("%s: %v; want it left out", p, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(o.root, "run/initctl")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the fifo: %v %v", fi, err)
	}
	ctx := context.Background()
	if got, err := diskDigest(ctx, o.root, toc, true, 2); err != nil || got != toc.TreeSHA256 {
		t.Fatalf("digest with the devices standing in: %s %v, want %s", got, err, toc.TreeSHA256)
	}
	// A change on disk beyond the devices is seen.
	extra := filepath.Join(o.root, "dev", "extra")
	os.WriteFile(extra, []byte("x"), 0o644)
	if got, _ := diskDigest(ctx, o.root, toc, true, 2); got == toc.TreeSHA256 {
		t.Error("an extra file went unnoticed")
	}
	os.Remove(extra)
	os.Chmod(filepath.Join(o.root, "etc/shadow"), 0o644)
	if got, _ := diskDigest(ctx, o.root, toc, true, 2); got == toc.TreeSHA256 {
		t.Error("a changed mode went unnoticed")
	}
	// Without either option the release is refused.
	if _, err := unpackBytes(sample(t), t.TempDir(), Options{}); !errors.Is(err, ErrRefused) {
		t.Errorf("devices without an option: %v, want ErrRefused", err)
	}
}

// TestUnpackStatic: a static release (a build's source snapshot) is
// refused unless AllowStatic, and with it unpacks to a tree that its
// static tree digest verifies.
func TestUnpackStatic(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "pages"), 0o755)
	os.WriteFile(filepath.Join(src, "pages", "a.txt"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(src, "build.sh"), []byte("echo\n"), 0o755)
	os.Symlink("pages/a.txt", filepath.Join(src, "index.txt"))
	var art bytes.Buffer
	res, err := release.PackDir(context.Background(), src, &art, release.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutside(t)
	if _, err := unpackBytes(art.Bytes(), o.root, Options{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a static release without AllowStatic: %v", err)
	}
	toc, err := unpackBytes(art.Bytes(), o.root, Options{AllowStatic: true})
	if err != nil {
		t.Fatal(err)
	}
	if toc.TreeSHA256 != res.TOC.TreeSHA256 {
		t.Fatalf("tree %s, packed %s", toc.TreeSHA256, res.TOC.TreeSHA256)
	}
	if l, _ := os.Readlink(filepath.Join(o.root, "index.txt")); l != "pages/a.txt" {
		t.Fatalf("index.txt links to %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(o.root, "build.sh")); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("build.sh: %v", fi)
	}
	o.check(t)
}
