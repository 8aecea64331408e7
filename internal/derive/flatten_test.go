package derive_test

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cairnhq/cairn/internal/derive"
)

// threeLayers is the acceptance image: three layers with a whiteout, an
// opaque directory, a hard link, setuid files, owners and a device node.
func threeLayers(t testing.TB) v1.Image {
	suid := file("usr/bin/su", "#!su\n")
	suid.mode = 0o4755
	owned := file("home/app/data", "owned by 1000\n")
	owned.uid, owned.gid = 1000, 1000
	sticky := dir("tmp")
	sticky.mode = 0o1777
	null := entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3}
	sgid := file("usr/bin/wall", "#!wall\n")
	sgid.mode, sgid.gid = 0o2755, 5
	l1 := layer(t, dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), dir("var"), dir("var/cache"),
		file("var/cache/old", "whited out\n"), dir("opt"), dir("opt/lib"), file("opt/lib/a", "a\n"),
		file("opt/lib/b", "b\n"), dir("usr"), dir("usr/bin"), suid, dir("home"), dir("home/app"), owned, sticky,
		dir("gone"), file("gone/x", "x\n"))
	l2 := layer(t, dir("var/cache"), file("var/cache/.wh.old", ""), dir("opt/lib"), file("opt/lib/.wh..wh..opq", ""),
		file("opt/lib/c", "c\n"), file("usr/bin/busybox", "#!busybox\n"), hardlink("usr/bin/sh", "usr/bin/busybox"),
		hardlink("usr/bin/ls", "usr/bin/busybox"), file(".wh.gone", ""), dir("dev"), null)
	l3 := layer(t, file("etc/passwd", "root:x:0:0::/root:/bin/bash\n"), sgid, symlink("bin", "usr/bin"),
		symlink("etc/mtab", "/proc/self/mounts"))
	return image(t, v1.Config{Entrypoint: []string{"/bin/sh"}}, l1, l2, l3)
}

// flattenTo pushes nothing: it flattens the image stored as manifest d of
// app and writes the stream to a file.
func flattenTo(t testing.TB, e *env, d string) string {
	t.Helper()
	img, _, err := e.reg.Image(context.Background(), "app", digestOf(t, d))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "flat.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := derive.Flatten(context.Background(), img, f); err != nil {
		t.Fatalf("flatten: %v", err)
	}
	return out
}

// TestFlattenEqualsCraneExport: an image pushed to cairn's registry and
// flattened gives the tree that `crane export` of the same image gives.
func TestFlattenEqualsCraneExport(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	d := e.push(t, threeLayers(t), "v1")

	got, err := untar(t, flattenTo(t, e, d.String()), false)
	if err != nil {
		t.Fatal(err)
	}

	pulled, err := remote.Image(e.ref(t, "app@"+d.String()), e.auth())
	if err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(t.TempDir(), "export.tar")
	f, err := os.Create(exported)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Export(pulled, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, err := untar(t, exported, false)
	if err != nil {
		t.Fatal(err)
	}

	gl, wl := listing(t, got), listing(t, want)
	if gl != wl {
		t.Fatalf("flattened tree differs from crane export:\n--- flatten\n%s--- crane export\n%s", gl, wl)
	}
	for _, must := range []string{
		"usr/bin/su urwxr-xr-x uid=0", "usr/bin/wall grwxr-xr-x uid=0 gid=5", "tmp dtrwxrwxrwx",
		"home/app/data -rw-r--r-- uid=1000 gid=1000", "dev/null Dcrw-rw-rw- uid=0 gid=0 dev=1,3",
		"usr/bin/sh -rw-r--r--", "link=usr/bin/busybox", "opt/lib/c ", "etc/mtab Lrwxrwxrwx uid=0 gid=0 -> /proc/self/mounts",
	} {
		if !strings.Contains(gl, must) {
			t.Errorf("flattened tree lacks %q:\n%s", must, gl)
		}
	}
	for _, gone := range []string{"var/cache/old", "opt/lib/a", "opt/lib/b", "gone"} {
		if strings.Contains(gl, "\n"+gone+" ") || strings.HasPrefix(gl, gone+" ") {
			t.Errorf("%s should be gone (whiteout, opaque directory):\n%s", gone, gl)
		}
	}
	if !strings.Contains(gl, "passwd -rw-r--r-- uid=0 gid=0 size=28") {
		t.Errorf("etc/passwd is not the top layer's:\n%s", gl)
	}
}

// TestFlattenCrossLayerHardLink: a hard link in an upper layer to a file of
// a lower one is written after its target, so tar -x creates it (crane
// export writes it first, and tar cannot); a link to a whited-out file is
// dropped.
func TestFlattenCrossLayerHardLink(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	l1 := layer(t, dir("lib"), file("lib/libc.so", "libc\n"), file("lib/old.so", "old\n"))
	l2 := layer(t, dir("usr"), hardlink("usr/libc-link", "lib/libc.so"), hardlink("usr/chain", "usr/libc-link"),
		file("lib/.wh.old.so", ""))
	l3 := layer(t, hardlink("usr/dangling", "lib/old.so"))
	d := e.push(t, image(t, v1.Config{}, l1, l2, l3), "x")
	out := flattenTo(t, e, d.String())
	got, err := untar(t, out, false)
	if err != nil {
		t.Fatalf("tar -x of the flattened stream: %v", err)
	}
	l := listing(t, got)
	for _, must := range []string{"usr/libc-link -rw-r--r-- uid=0 gid=0 size=5", "usr/chain ", "link=lib/libc.so"} {
		if !strings.Contains(l, must) {
			t.Errorf("tree lacks %q:\n%s", must, l)
		}
	}
	if strings.Count(l, "link=lib/libc.so") != 2 {
		t.Errorf("want usr/libc-link and usr/chain linked to lib/libc.so:\n%s", l)
	}
	if strings.Contains(l, "dangling") || strings.Contains(l, "old.so") {
		t.Errorf("a link to a whited-out file must be dropped:\n%s", l)
	}
}

// TestFlattenDeterministic: the same image gives the same bytes.
func TestFlattenDeterministic(t *testing.T) {
	e := newEnv(t)
	d := e.push(t, threeLayers(t), "v1")
	a, b := readFile(t, flattenTo(t, e, d.String())), readFile(t, flattenTo(t, e, d.String()))
	if string(a) != string(b) {
		t.Fatal("two flattens of one image differ")
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
