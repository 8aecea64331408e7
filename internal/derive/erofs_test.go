package derive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/cairnhq/cairn/internal/release"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta"
)

// rootfsTree writes a small Linux tree with what a rootfs keeps: owners,
// setuid, setgid and sticky modes, a hard link, a device, a fifo, an
// absolute symlink and a user xattr.
func rootfsTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc", "dev", "tmp", "home/app", "usr/lib"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(root, "bin/busybox"), []byte(strings.Repeat("busybox ", 5000)), 0o755))
	must(os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/sh")))
	must(os.WriteFile(filepath.Join(root, "bin/su"), []byte("su"), 0o755))
	must(os.Chmod(filepath.Join(root, "bin/su"), 0o4755))
	must(os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(os.Symlink("/proc/self/mounts", filepath.Join(root, "etc/mtab")))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.Chown(filepath.Join(root, "home/app"), 1000, 1000))
	must(os.WriteFile(filepath.Join(root, "home/app/data"), []byte("data"), 0o600))
	must(os.Chown(filepath.Join(root, "home/app/data"), 1000, 1000))
	must(syscall.Mknod(filepath.Join(root, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3))
	must(syscall.Mkfifo(filepath.Join(root, "dev/initctl"), 0o600))
	must(os.WriteFile(filepath.Join(root, "usr/lib/libx.so"), []byte("lib"), 0o644))
	must(syscall.Setxattr(filepath.Join(root, "usr/lib/libx.so"), "user.note", []byte("kept"), 0))
	return root
}

// storeRootfs tars tree (tar.zst, as a rootfs release is) and records it as
// a version of a rootfs deployment; it returns the release sha256.
func storeRootfs(t testing.TB, e *env, tree string) string {
	t.Helper()
	ctx := context.Background()
	// A real rootfs release: a tar of the tree through the rootfs packer.
	plain, err := exec.Command("tar", "-cpf", "-", "--numeric-owner", "--xattrs", "-C", tree, ".").Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	art := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	out, err := os.Create(art)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.PackRootfsTar(ctx, bytes.NewReader(plain), out, release.RootfsOptions{ScratchDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	b := readFile(t, art)
	sum := sha256.Sum256(b)
	sha := hex.EncodeToString(sum[:])
	f, err := os.Open(art)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := e.blobs.Put(ctx, digest.NewDigestFromEncoded(digest.SHA256, sha), int64(len(b)), f); err != nil {
		t.Fatal(err)
	}
	dep := &meta.Deployment{Name: "os", Kind: meta.KindRootfs}
	if err := e.meta.CreateDeployment(ctx, dep, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.meta.CreateVersion(ctx, meta.NewVersion{DeploymentID: dep.ID, Activate: true, Actor: "test",
		Release: meta.Release{SHA256: sha, Kind: meta.KindRootfs, SizeBytes: int64(len(b)), URI: "file:///x"}}); err != nil {
		t.Fatal(err)
	}
	return sha
}

// TestErofsDeterministic: the erofs image of a rootfs release is derived
// once, and a build from a separate unpack (other mtimes, another day) is
// byte-identical; the image holds the tree (owners, modes, links, devices).
func TestErofsDeterministic(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mkfs.erofs missing: .ci/run installs erofs-utils")
		}
		t.Skip("mkfs.erofs missing (apt-get install erofs-utils)")
	}
	e := newEnv(t)
	tree := rootfsTree(t)
	sha := storeRootfs(t, e, tree)
	var calls atomic.Int32
	d := e.deriver(t, &calls)
	r, err := d.Erofs(context.Background(), sha)
	if err != nil {
		t.Fatal(err)
	}
	if r.Release.Kind != meta.DerivedErofs || r.Derived.SourceSHA256 != sha {
		t.Errorf("erofs record: %+v", r)
	}
	again, err := e.deriver(t, &calls).Erofs(context.Background(), sha)
	if err != nil || again.Release.SHA256 != r.Release.SHA256 {
		t.Errorf("asking again: %+v, %v", again, err)
	}

	// A separate unpack, its files touched to other times, built again.
	art := filepath.Join(t.TempDir(), "a.tar.zst")
	rc, err := e.blobs.Open(context.Background(), digest.NewDigestFromEncoded(digest.SHA256, sha), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(art)
	if _, err := f.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	f.Close()
	dir := t.TempDir()
	if err := derive.SafeUnpack(context.Background(), art, dir); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(48 * time.Hour)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, later, later)
		}
		return nil
	})
	img := filepath.Join(t.TempDir(), "b.erofs")
	if err := derive.BuildErofs(context.Background(), "mkfs.erofs", sha, img, dir); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(readFile(t, img))
	if got := hex.EncodeToString(sum[:]); got != r.Release.SHA256 {
		t.Fatalf("erofs from a separate unpack: sha256 %s, derived %s", got, r.Release.SHA256)
	}
	checkErofsTree(t, img, tree)
}

// checkErofsTree mounts img read-only (a loop device) and compares it with
// tree. Where mounting is not allowed it compares fsck.erofs's extraction,
// which keeps owners and plain modes but not setuid bits or hard links.
func checkErofsTree(t *testing.T, img, tree string) {
	mnt := t.TempDir()
	want := listing(t, tree)
	if out, err := exec.Command("mount", "-t", "erofs", "-o", "loop,ro", img, mnt).CombinedOutput(); err == nil {
		defer exec.Command("umount", mnt).Run()
		if got := listing(t, mnt); got != want {
			t.Fatalf("mounted erofs image differs from the tree:\n--- image\n%s--- tree\n%s", got, want)
		}
		if v, err := getxattr(filepath.Join(mnt, "usr/lib/libx.so"), "user.note"); err != nil || v != "kept" {
			t.Errorf("xattr user.note in the image: %q, %v", v, err)
		}
		return
	} else {
		t.Logf("mount: %v: %s; checking fsck.erofs --extract instead", err, out)
	}
	x := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("fsck.erofs", "--extract="+x, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v: %s", err, out)
	}
	for _, must := range []string{"home/app/data -rw------- uid=1000 gid=1000 size=4", "dev/null Dcrw-rw-rw- uid=0 gid=0 dev=1,3",
		"etc/mtab Lrwxrwxrwx uid=0 gid=0 -> /proc/self/mounts", "bin/sh -rwxr-xr-x uid=0 gid=0 size=40000"} {
		if got := listing(t, x); !strings.Contains(got, must) {
			t.Errorf("extracted image lacks %q:\n%s", must, got)
		}
	}
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestErofsRefused: only rootfs releases make erofs images.
func TestErofsRefused(t *testing.T) {
	e := newEnv(t)
	e.push(t, plainImage(t, "f"), "v1")
	_, v := e.version(t, "v1")
	var calls atomic.Int32
	d := e.deriver(t, &calls)
	if _, err := d.Erofs(context.Background(), v.ArtifactSHA256); !errorsIsInvalid(err) {
		t.Errorf("erofs of an OCI manifest: %v, want ErrInvalid", err)
	}
	if _, err := d.Erofs(context.Background(), strings.Repeat("0", 64)); !errorsIsNotFound(err) {
		t.Errorf("erofs of an unknown release: %v, want ErrNotFound", err)
	}
}

func errorsIsInvalid(err error) bool  { return errors.Is(err, meta.ErrInvalid) }
func errorsIsNotFound(err error) bool { return errors.Is(err, meta.ErrNotFound) }
