package derive_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// staticPacker packs with the static packer (release.Extract, then
// PackDir): right for trees with no owners, special modes, hard links or
// devices, which is what these tests push. The server packs with the
// rootfs packer.
func staticPacker(calls *atomic.Int32) derive.Packer {
	return func(ctx context.Context, r io.Reader, w io.Writer, scratch string) (*release.Result, error) {
		calls.Add(1)
		dir := filepath.Join(scratch, "tree")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		if err := release.Extract(ctx, r, dir, release.Limits{}); err != nil {
			return nil, err
		}
		return release.PackDir(ctx, dir, w, release.PackOptions{})
	}
}

// plainImage has three layers, a whiteout and an opaque directory, and
// nothing the static packer normalises.
func plainImage(t testing.TB, salt string) v1.Image {
	l1 := layer(t, dir("app"), file("app/main", "main "+salt), dir("app/lib"), file("app/lib/old", "old"), file("app/tmp", "tmp"))
	l2 := layer(t, dir("app/lib"), file("app/lib/.wh..wh..opq", ""), file("app/lib/new", "new"), file("app/.wh.tmp", ""))
	l3 := layer(t, dir("etc"), file("etc/config", "port=80"), symlink("app/config", "../etc/config"))
	return image(t, v1.Config{Entrypoint: []string{"/app/main"}, Cmd: []string{"--serve"}, Env: []string{"A=1", "PATH=/bin"},
		WorkingDir: "/app", User: "1000:1000", ExposedPorts: map[string]struct{}{"9000/tcp": {}, "80/tcp": {}, "53/udp": {}}}, l1, l2, l3)
}

// version publishes the pushed tag of app as a version.
func (e *env) version(t testing.TB, tag string) (*meta.Deployment, *meta.Version) {
	t.Helper()
	ctx := context.Background()
	dep, err := e.meta.GetDeployment(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.reg.VersionFromImage(ctx, dep, tag, true, "test")
	if err != nil {
		t.Fatal(err)
	}
	if dep, err = e.meta.GetDeployment(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	return dep, v
}

func (e *env) deriver(t testing.TB, calls *atomic.Int32) *derive.Deriver {
	t.Helper()
	d, err := derive.New(derive.Config{Meta: e.meta, Blobs: e.blobs, Images: e.reg, Pack: staticPacker(calls), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rootfsOf derives concurrently with n goroutines on each deriver and
// returns the sha256s they got.
func rootfsOf(t *testing.T, ds []*derive.Deriver, n int, dep *meta.Deployment, v *meta.Version) []string {
	t.Helper()
	var (
		mu   sync.Mutex
		shas []string
		wg   sync.WaitGroup
	)
	for _, d := range ds {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := d.Rootfs(context.Background(), dep, v)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				shas = append(shas, r.Release.SHA256)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return shas
}

// TestRootfsOnce: eight callers at once derive once, and agree; a second
// Deriver on the same store (another process) finds the record.
func TestRootfsOnce(t *testing.T) {
	e := newEnv(t)
	e.push(t, plainImage(t, "a"), "v1")
	dep, v := e.version(t, "v1")
	var calls atomic.Int32
	d := e.deriver(t, &calls)
	shas := rootfsOf(t, []*derive.Deriver{d}, 8, dep, v)
	if calls.Load() != 1 {
		t.Fatalf("%d derivations for 8 concurrent callers, want 1", calls.Load())
	}
	for _, s := range shas {
		if s != shas[0] {
			t.Fatalf("callers got different rootfs: %v", shas)
		}
	}
	var other atomic.Int32
	r, err := e.deriver(t, &other).Rootfs(context.Background(), dep, v)
	if err != nil || r.Release.SHA256 != shas[0] || other.Load() != 0 {
		t.Fatalf("second deriver: %+v, %v, %d derivations; want the recorded %s", r, err, other.Load(), shas[0])
	}
	if r.Release.Kind != meta.KindRootfs || r.Derived.SourceSHA256 != v.ArtifactSHA256 || r.Image != "sha256:"+v.ArtifactSHA256 {
		t.Errorf("rootfs record: %+v", r)
	}
	from, err := e.meta.(meta.Derivations).DerivedFrom(context.Background(), r.Release.SHA256)
	if err != nil || len(from) != 1 || from[0].SourceSHA256 != v.ArtifactSHA256 {
		t.Errorf("DerivedFrom(rootfs) = %+v, %v; want the OCI manifest", from, err)
	}
	if _, err := e.blobs.Stat(context.Background(), digest.NewDigestFromEncoded(digest.SHA256, r.Release.SHA256)); err != nil {
		t.Errorf("rootfs bytes not stored: %v", err)
	}
}

// TestRootfsOnceAcrossDerivers: two Derivers (two processes) asked at once
// derive once: the store's lock makes the second wait for the record.
func TestRootfsOnceAcrossDerivers(t *testing.T) {
	e := newEnv(t)
	e.push(t, plainImage(t, "b"), "v1")
	dep, v := e.version(t, "v1")
	var calls atomic.Int32
	shas := rootfsOf(t, []*derive.Deriver{e.deriver(t, &calls), e.deriver(t, &calls)}, 4, dep, v)
	if calls.Load() != 1 {
		t.Fatalf("%d derivations by two derivers, want 1", calls.Load())
	}
	for _, s := range shas {
		if s != shas[0] {
			t.Fatalf("callers got different rootfs: %v", shas)
		}
	}
}

// TestRootfsDeterministic: the same image pushed to two separate servers
// derives the same rootfs sha256.
func TestRootfsDeterministic(t *testing.T) {
	var got []string
	for range 2 {
		e := newEnv(t)
		e.push(t, plainImage(t, "c"), "v1")
		dep, v := e.version(t, "v1")
		var calls atomic.Int32
		r, err := e.deriver(t, &calls).Rootfs(context.Background(), dep, v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Release.SHA256)
	}
	if got[0] != got[1] {
		t.Fatalf("one image, two rootfs sha256s: %v", got)
	}
}

// TestRootfsRuntime: the image config gives the runtime defaults.
func TestRootfsRuntime(t *testing.T) {
	e := newEnv(t)
	e.push(t, plainImage(t, "d"), "v1")
	dep, v := e.version(t, "v1")
	var calls atomic.Int32
	r, err := e.deriver(t, &calls).Rootfs(context.Background(), dep, v)
	if err != nil {
		t.Fatal(err)
	}
	want := derive.Runtime{Cmd: []string{"/app/main", "--serve"}, Env: map[string]string{"A": "1", "PATH": "/bin"},
		Workdir: "/app", User: "1000:1000", Port: 80}
	if !reflect.DeepEqual(r.Runtime, want) {
		t.Errorf("runtime %+v, want %+v", r.Runtime, want)
	}
	if got := derive.RuntimeOf(&v1.ConfigFile{}); got.Port != derive.DefaultPort || got.Workdir != "/" {
		t.Errorf("runtime of an empty config: %+v", got)
	}
}

// TestRootfsRefused: a static deployment's version derives nothing.
func TestRootfsRefused(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	d := e.deriver(t, &calls)
	_, err := d.Rootfs(context.Background(), &meta.Deployment{ID: "dep_x", Name: "x", Kind: meta.KindStatic},
		&meta.Version{DeploymentID: "dep_x"})
	if err == nil || !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("static version: %v, want ErrInvalid", err)
	}
	noPack, err := derive.New(derive.Config{Meta: e.meta, Blobs: e.blobs, Images: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	e.push(t, plainImage(t, "e"), "v1")
	dep, v := e.version(t, "v1")
	if _, err := noPack.Rootfs(context.Background(), dep, v); !errors.Is(err, derive.ErrUnavailable) {
		t.Errorf("no packer: %v, want ErrUnavailable", err)
	}
}

// TestRootfsCallerGivesUp: the first caller going away does not end the
// derivation that a second caller waits for.
func TestRootfsCallerGivesUp(t *testing.T) {
	e := newEnv(t)
	e.push(t, plainImage(t, "g"), "v1")
	dep, v := e.version(t, "v1")
	var calls atomic.Int32
	entered, gate := make(chan struct{}), make(chan struct{})
	inner := staticPacker(&calls)
	gated := func(ctx context.Context, r io.Reader, w io.Writer, scratch string) (*release.Result, error) {
		close(entered)
		<-gate
		return inner(ctx, r, w, scratch)
	}
	d, err := derive.New(derive.Config{Meta: e.meta, Blobs: e.blobs, Images: e.reg, Pack: gated, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := d.Rootfs(ctx, dep, v)
		first <- err
	}()
	<-entered
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := d.Rootfs(context.Background(), dep, v)
		second <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the second caller join the flight
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d derivations, want 1", calls.Load())
	}
}
