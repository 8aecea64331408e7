package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
)

func newPublisher(t testing.TB, maxPacks int) (*Publisher, *meta.Deployment) {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	dep := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := store.CreateDeployment(t.Context(), dep, "tester"); err != nil {
		t.Fatal(err)
	}
	p := &Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(), MaxPacks: maxPacks,
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	return p, dep
}

// siteTar is a tar of a one-page site whose page names i.
func siteTar(t *testing.T, i int) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	page := fmt.Appendf(nil, "<h1>page %d</h1>", i)
	if err := tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: int64(len(page)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(page)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestMaxPacks: concurrent publishes pack and store at most MaxPacks at a
// time, and every one of them ends in its version.
func TestMaxPacks(t *testing.T) {
	for _, maxPacks := range []int{1, 2, 0} {
		t.Run(fmt.Sprint("max=", maxPacks), func(t *testing.T) {
			p, dep := newPublisher(t, maxPacks)
			want := int32(maxPacks)
			if maxPacks == 0 {
				want = DefaultMaxPacks
			}
			const publishes = 6
			var running, most, entered atomic.Int32
			p.packDir = func(ctx context.Context, dir string, w io.Writer, o release.PackOptions) (*release.Result, error) {
				entered.Add(1)
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				// Hold the turn until the others fill every turn, or none is
				// left to come, so that a gate letting more through is seen.
				for end := time.Now().Add(5 * time.Second); running.Load() < want && entered.Load() < publishes && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
				return release.PackDir(ctx, dir, w, o)
			}
			var wg sync.WaitGroup
			errs := make(chan error, publishes)
			for i := range publishes {
				wg.Go(func() {
					_, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, i)), Options{Actor: "tester"})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := most.Load(); got != want {
				t.Errorf("at most %d packs at once, want %d", got, want)
			}
			vs, err := p.Meta.ListVersions(t.Context(), dep.ID, 100, 0)
			if err != nil || len(vs) != publishes {
				t.Errorf("%d versions (%v), want %d", len(vs), err, publishes)
			}
		})
	}
}

// TestMaxPacksWaitCancelled: a publish whose client goes away while it
// waits for its turn ends with the context's error and leaves nothing.
func TestMaxPacksWaitCancelled(t *testing.T) {
	p, dep := newPublisher(t, 1)
	started, release1 := make(chan struct{}), make(chan struct{})
	p.packDir = func(ctx context.Context, dir string, w io.Writer, o release.PackOptions) (*release.Result, error) {
		close(started)
		<-release1
		return release.PackDir(ctx, dir, w, o)
	}
	first := make(chan error, 1)
	go func() {
		_, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, 1)), Options{Actor: "tester"})
		first <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	body := siteTar(t, 2)
	_, err := p.Publish(ctx, dep, bytes.NewReader(body), Options{Actor: "tester"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting publish: %v, want the context's deadline", err)
	}
	close(release1)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	vs, err := p.Meta.ListVersions(t.Context(), dep.ID, 100, 0)
	if err != nil || len(vs) != 1 {
		t.Fatalf("%d versions (%v), want only the first", len(vs), err)
	}
	left, err := os.ReadDir(p.StageDir)
	if err != nil || len(left) != 0 {
		t.Errorf("staging directory holds %d entries (%v)", len(left), err)
	}
	n := 0
	if err := p.Blobs.List(t.Context(), func(info blob.Info) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("%d blobs stored (%v), want the first publish's only", n, err)
	}
}

// cutReader gives the first n bytes of b, then ends the request's context
// and fails, as a client that goes away mid-upload.
type cutReader struct {
	b      []byte
	n      int
	cancel context.CancelFunc
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n == 0 {
		c.cancel()
		return 0, io.ErrUnexpectedEOF
	}
	k := copy(p, c.b[:min(c.n, len(c.b))])
	c.b, c.n = c.b[k:], c.n-k
	return k, nil
}

// TestPublishMetrics: publishes are counted by result; a client leaving
// mid-upload is "cancelled", not a rejected (truncated) upload.
func TestPublishMetrics(t *testing.T) {
	p, dep := newPublisher(t, 0)
	m := metrics.New()
	p.Observe(m)
	if _, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, 1)), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(t.Context(), dep, strings.NewReader("not a tar"), Options{}); !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("not a tar: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := p.Publish(ctx, dep, &cutReader{b: siteTar(t, 2), n: 700, cancel: cancel}, Options{}); err == nil {
		t.Fatal("a cut upload was published")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`cairn_publish_total{result="ok"} 1`, `cairn_publish_total{result="rejected"} 1`,
		`cairn_publish_total{result="cancelled"} 1`, `cairn_publish_duration_seconds_count 1`,
		"cairn_publish_waiting 0", "cairn_publish_packing 0",
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("no %q in\n%s", want, rec.Body.String())
		}
	}
}
