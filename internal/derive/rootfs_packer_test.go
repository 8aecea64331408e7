package derive_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/release/unpack"
)

func rootfsPack(calls *atomic.Int32) derive.Packer {
	return func(ctx context.Context, r io.Reader, w io.Writer, dir string) (*release.Result, error) {
		calls.Add(1)
		return release.PackRootfsTar(ctx, r, w, release.RootfsOptions{ScratchDir: dir})
	}
}

// TestDerivedRootfsEqualsCraneExport: the acceptance with the rootfs packer.
func TestDerivedRootfsEqualsCraneExport(t *testing.T) {
	needRoot(t)
	var shas []string
	for round := range 2 {
		e := newEnv(t)
		d := e.push(t, threeLayers(t), "v1")
		dep, v := e.version(t, "v1")
		var calls atomic.Int32
		der, err := derive.New(derive.Config{Meta: e.meta, Blobs: e.blobs, Images: e.reg, Pack: rootfsPack(&calls), TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := der.Rootfs(context.Background(), dep, v)
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, r.Release.SHA256)
		art := filepath.Join(t.TempDir(), "r.tar.zst")
		rc, _ := e.blobs.Open(context.Background(), digest.NewDigestFromEncoded(digest.SHA256, r.Release.SHA256), 0, -1)
		f, _ := os.Create(art)
		io.Copy(f, rc)
		rc.Close()
		got, err := untar(t, art, true)
		if err != nil {
			t.Fatal(err)
		}
		pulled, _ := remote.Image(e.ref(t, "app@"+d.String()), e.auth())
		exported := filepath.Join(t.TempDir(), "export.tar")
		g, _ := os.Create(exported)
		crane.Export(pulled, g)
		g.Close()
		want, err := untar(t, exported, false)
		if err != nil {
			t.Fatal(err)
		}
		gl, wl := listing(t, got), listing(t, want)
		if gl != wl {
			t.Fatalf("derived rootfs differs from crane export:\n--- rootfs\n%s--- crane\n%s", gl, wl)
		}
		dir := filepath.Join(t.TempDir(), "u")
		os.Mkdir(dir, 0o755)
		f.Seek(0, 0)
		fi, _ := f.Stat()
		toc, err := unpack.Unpack(context.Background(), f, fi.Size(), dir, unpack.Options{AllowDevices: true})
		if err != nil {
			t.Fatal(err)
		}
		if ul := listing(t, dir); ul != wl {
			t.Fatalf("safe unpack differs:\n%s\n%s", ul, wl)
		}
		if toc.TreeSHA256 != r.Release.TreeSHA256 {
			t.Errorf("tree sha %s vs %s", toc.TreeSHA256, r.Release.TreeSHA256)
		}
		t.Logf("round %d: rootfs %s, %d derivations", round, r.Release.SHA256, calls.Load())
		if round == 0 {
			ef, err := der.Erofs(context.Background(), r.Release.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("erofs %s", ef.Release.SHA256)
		}
	}
	if shas[0] != shas[1] {
		t.Fatalf("two derivations: %v", shas)
	}
}
