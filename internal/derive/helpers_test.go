package derive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	blobfs "github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
)

const testToken = "s3cret-token-of-at-least-32-chars"

// env is cairn's registry on SQLite and a filesystem blob store, served on
// loopback, with one oci deployment "app".
type env struct {
	reg   *registry.Registry
	meta  meta.Full
	blobs *blobfs.Store
	host  string
	dir   string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return newEnvOn(t, dir, m)
}

func newEnvOn(t testing.TB, dir string, m meta.Full) *env {
	t.Helper()
	b, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.New(registry.Config{Meta: m, Blobs: b, Token: testToken,
		StageDir: filepath.Join(dir, "stage"), Host: "registry.test", UploadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	if err := m.CreateDeployment(context.Background(), &meta.Deployment{Name: "app", Kind: meta.KindOCI}, "test"); err != nil {
		t.Fatal(err)
	}
	return &env{reg: r, meta: m, blobs: b, host: strings.TrimPrefix(srv.URL, "http://"), dir: dir}
}

func (e *env) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (e *env) auth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "someone", Password: testToken})
}

// push pushes img as app:tag and returns its manifest digest.
func (e *env) push(t testing.TB, img v1.Image, tag string) digest.Digest {
	t.Helper()
	if err := remote.Write(e.ref(t, "app:"+tag), img, e.auth()); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.String())
}

// entry is one tar entry of a test layer.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	body       string
	major      int64
	minor      int64
}

func dir(n string) entry              { return entry{name: n, typ: tar.TypeDir, mode: 0o755} }
func file(n, body string) entry       { return entry{name: n, typ: tar.TypeReg, mode: 0o644, body: body} }
func hardlink(n, target string) entry { return entry{name: n, typ: tar.TypeLink, link: target} }
func symlink(n, target string) entry {
	return entry{name: n, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

// layer makes an uncompressed-tar layer (gzipped by go-containerregistry).
func layer(t testing.TB, es ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(1700000000, 0),
			Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// image stacks layers on an empty image with config c.
func image(t testing.TB, c v1.Config, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, c); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// needRoot: these tests restore owners, setuid bits and devices.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("derive tests must run as root in CI")
		}
		t.Skip("needs root (owners, setuid, devices)")
	}
}

// untar extracts the tar file src into a new directory with tar -xpf as
// root, as a host would, and returns it. Errors of tar are returned.
func untar(t testing.TB, src string, zstd bool) (string, error) {
	t.Helper()
	dst := t.TempDir()
	args := []string{"-xpf", src, "-C", dst, "--numeric-owner", "--xattrs", "--xattrs-include=*"}
	if zstd {
		args = append([]string{"--zstd"}, args...)
	}
	out, err := exec.Command("tar", args...).CombinedOutput()
	if err != nil {
		return dst, fmt.Errorf("tar %v: %v: %s", args, err, out)
	}
	return dst, nil
}

// listing describes every path under root: type, mode, owner, size, link
// target, device numbers, content sha256, and for hard links the first
// path (in sorted order) of its inode. mtimes are left out.
func listing(t testing.TB, root string) string {
	t.Helper()
	type item struct {
		rel string
		fi  fs.FileInfo
	}
	var items []item
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		items = append(items, item{rel, fi})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	firstOf := map[uint64]string{}
	var b strings.Builder
	for _, it := range items {
		st := it.fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v uid=%d gid=%d", it.rel, it.fi.Mode(), st.Uid, st.Gid)
		switch m := it.fi.Mode(); {
		case m.IsRegular():
			body, err := os.ReadFile(filepath.Join(root, it.rel))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			line += fmt.Sprintf(" size=%d sha256=%s", len(body), hex.EncodeToString(sum[:8]))
			if st.Nlink > 1 {
				if f, ok := firstOf[st.Ino]; ok {
					line += " link=" + f
				} else {
					firstOf[st.Ino] = it.rel
				}
			}
		case m&fs.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(root, it.rel))
			line += " -> " + target
		case m&fs.ModeDevice != 0:
			line += fmt.Sprintf(" dev=%d,%d", unixMajor(st.Rdev), unixMinor(st.Rdev))
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func unixMajor(dev uint64) uint64 { return (dev >> 8) & 0xfff }
func unixMinor(dev uint64) uint64 { return (dev & 0xff) | ((dev >> 12) & 0xfff00) }

func digestOf(t testing.TB, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
