package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
)

// deriveBench pushes a ~200 MB, 4-layer image (files of mixed sizes, part
// text, part random; a whiteout and an opaque directory) to cairn's
// registry and times, alternating over 3 rounds, the flatten that derives
// a rootfs from it (layers read from the blob store, mutate.Extract,
// relinked) against `crane export | tar -x` of the same image pulled from
// the same registry. It prints the medians and their ratio (target ≤ 1.0).
func deriveBench() error {
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ctx := context.Background()
	m, err := sqlite.Open(filepath.Join(work, "meta.db"))
	if err != nil {
		return err
	}
	defer m.Close()
	blobs, err := fs.New(filepath.Join(work, "blobs"))
	if err != nil {
		return err
	}
	reg, err := registry.New(registry.Config{Meta: m, Blobs: blobs, Token: benchToken,
		StageDir: filepath.Join(work, "stage"), Host: "bench", UploadTTL: time.Hour})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	if err := m.CreateDeployment(ctx, &meta.Deployment{Name: "img", Kind: meta.KindOCI}, "bench"); err != nil {
		return err
	}
	fmt.Println("building a 4-layer image of ~200 MB")
	img, size, err := benchImage()
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/img:bench", name.Insecure)
	if err != nil {
		return err
	}
	auth := remote.WithAuth(&authn.Basic{Username: "bench", Password: benchToken})
	if err := remote.Write(ref, img, auth); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image %s: %s uncompressed\n", d, mb(float64(size)))

	flatten := func(untar bool) (time.Duration, error) {
		dir, err := os.MkdirTemp(work, "flat-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		start := time.Now()
		stored, _, err := reg.Image(ctx, "img", digest.Digest(d.String()))
		if err != nil {
			return 0, err
		}
		if !untar {
			f, err := os.Create(filepath.Join(dir, "rootfs.tar"))
			if err != nil {
				return 0, err
			}
			defer f.Close()
			err = derive.Flatten(ctx, stored, f)
			return time.Since(start), err
		}
		err = pipeTar(dir, func(w io.Writer) error { return derive.Flatten(ctx, stored, w) })
		return time.Since(start), err
	}
	craneExport := func() (time.Duration, error) {
		dir, err := os.MkdirTemp(work, "crane-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		start := time.Now()
		pulled, err := remote.Image(ref, auth)
		if err != nil {
			return 0, err
		}
		err = pipeTar(dir, func(w io.Writer) error { return crane.Export(pulled, w) })
		return time.Since(start), err
	}
	var tFlat, tFlatTar, tCrane []float64
	for round := range 3 {
		c, err := craneExport()
		if err != nil {
			return fmt.Errorf("crane export | tar -x: %w", err)
		}
		f, err := flatten(false)
		if err != nil {
			return fmt.Errorf("flatten: %w", err)
		}
		ft, err := flatten(true)
		if err != nil {
			return fmt.Errorf("flatten | tar -x: %w", err)
		}
		fmt.Printf("round %d: crane export | tar -x %.2fs, flatten %.2fs, flatten | tar -x %.2fs\n",
			round+1, c.Seconds(), f.Seconds(), ft.Seconds())
		tCrane, tFlat, tFlatTar = append(tCrane, c.Seconds()), append(tFlat, f.Seconds()), append(tFlatTar, ft.Seconds())
	}
	c, f, ft := median(tCrane), median(tFlat), median(tFlatTar)
	fmt.Printf("OCI flatten vs crane export | tar -x: %.2fs vs %.2fs = %.2f× (target ≤ 1.0×)\n", f, c, f/c)
	fmt.Printf("flatten | tar -x (the same work as crane's side) vs crane export | tar -x: %.2fs vs %.2fs = %.2f×\n", ft, c, ft/c)
	return nil
}

// pipeTar runs `tar -x -C dir` fed by write.
func pipeTar(dir string, write func(io.Writer) error) error {
	cmd := exec.Command("tar", "-x", "-C", dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := write(in)
	in.Close()
	if err := cmd.Wait(); err != nil {
		return err
	}
	return werr
}

// benchImage makes the benchmark image: 4 layers of ~50 MB each.
func benchImage() (v1.Image, int64, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet config value main func return")
	var total int64
	var layers []v1.Layer
	for l := range 4 {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		var n int64
		for i := 0; n < 50<<20; i++ {
			dir := fmt.Sprintf("usr/share/l%d/d%03d", l, i/50)
			if i%50 == 0 {
				tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			}
			size := 1 << (10 + rng.IntN(11)) // 1 KiB … 1 MiB
			body := make([]byte, size)
			if i%3 == 0 {
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
			} else {
				var sb strings.Builder
				for sb.Len() < size {
					sb.WriteString(words[rng.IntN(len(words))] + " ")
				}
				copy(body, sb.String())
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%05d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
			tw.Write(body)
			n += int64(size)
		}
		if l > 0 { // a whiteout and an opaque directory over the layer below
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/l%d/d000/.wh.f00001", l-1), Typeflag: tar.TypeReg, Mode: 0o644})
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/l%d/d001/.wh..wh..opq", l-1), Typeflag: tar.TypeReg, Mode: 0o644})
		}
		tw.Close()
		total += n
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return nil, 0, err
		}
		layers = append(layers, layer)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	return img, total, err
}
