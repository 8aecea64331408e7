package registry_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/registry"
)

// openStoreFunc opens one more handle on a shared metadata database, on
// the clock now.
type openStoreFunc func(t *testing.T, now func() time.Time) meta.Full

func TestSharedUploads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	testSharedUploads(t, func(t *testing.T, now func() time.Time) meta.Full {
		m, err := sqlite.Open(path, sqlite.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestPostgresSharedUploads(t *testing.T) {
	postgresAdmin(t)
	u := freshSchema(t)
	testSharedUploads(t, func(t *testing.T, now func() time.Time) meta.Full {
		m, err := postgres.Open(t.Context(), u, postgres.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// testSharedUploads runs two registries, as two API processes behind a load
// balancer would run: each with its own metadata store handle and staging
// directory, on one database and one blob directory, and one clock.
func testSharedUploads(t *testing.T, open openStoreFunc) {
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	edit := func(cfg *registry.Config) {
		cfg.Now, cfg.UploadTTL, cfg.StageDir = c.Now, time.Minute, t.TempDir()
	}
	a := newEnvOn(t, dir, open(t, c.Now), edit)
	b := newEnvOn(t, dir, open(t, c.Now), edit)
	a.createOCI(t, "app")
	leased := func() map[string]bool {
		t.Helper()
		snap, err := a.meta.(meta.GC).GCSnapshot(t.Context(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return snap.Leased
	}
	wantRange := func(what string, resp *http.Response, want string) {
		t.Helper()
		if got := resp.Header.Get("Range"); got != want {
			t.Errorf("%s: Range %q, want %q", what, got, want)
		}
	}

	// A chunked upload that moves between the two.
	layer := bytes.Repeat([]byte("layer bytes "), 1000)
	d := digest.FromBytes(layer)
	loc := a.startUpload(t, "app/web")
	resp, body := b.do(t, "PATCH", loc, layer[:5000], "Content-Range", "0-4999")
	wantCode(t, "PATCH on B", resp, body, 202, "")
	wantRange("PATCH on B", resp, "0-4999")
	resp, body = a.do(t, "PATCH", loc, layer[5000:], "Content-Range", fmt.Sprintf("5000-%d", len(layer)-1))
	wantCode(t, "PATCH on A", resp, body, 202, "")
	resp, body = b.do(t, "GET", loc, nil)
	wantCode(t, "GET on B", resp, body, 204, "")
	wantRange("GET on B", resp, fmt.Sprintf("0-%d", len(layer)-1))
	if l := leased(); len(l) != 2 {
		t.Errorf("leases during the upload: %v, want the two parts", l)
	}
	resp, body = b.do(t, "PUT", loc+"?digest="+d.String(), nil)
	wantCode(t, "PUT on B", resp, body, 201, "")
	resp, body = a.do(t, "GET", "/v2/app/web/blobs/"+d.String(), nil)
	wantCode(t, "pull from A", resp, body, 200, "")
	if !bytes.Equal(body, layer) {
		t.Errorf("pulled %d bytes, want the %d pushed", len(body), len(layer))
	}
	resp, body = a.do(t, "GET", loc, nil)
	wantCode(t, "the finished upload on A", resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
	if l := leased(); len(l) != 0 {
		t.Errorf("leases after the upload: %v", l)
	}

	// The usual push: one PATCH, then an empty PUT. The part is the blob.
	blobs := a.blobCount(t)
	small := []byte("a whole layer in one PATCH")
	loc = b.startUpload(t, "app/web")
	resp, body = a.do(t, "PATCH", loc, small)
	wantCode(t, "single PATCH", resp, body, 202, "")
	resp, body = b.do(t, "PUT", loc+"?digest="+digest.FromBytes(small).String(), nil)
	wantCode(t, "empty PUT", resp, body, 201, "")
	if n := a.blobCount(t); n != blobs+1 {
		t.Errorf("%d blobs after a one-part upload, want %d", n, blobs+1)
	}

	// A stale chunk: B appended first, so A's chunk at 0 is refused with
	// the current Range, and stores nothing.
	stale := a.startUpload(t, "app/web")
	resp, body = b.do(t, "PATCH", stale, []byte("bbbb"), "Content-Range", "0-3")
	wantCode(t, "first chunk on B", resp, body, 202, "")
	blobs = a.blobCount(t)
	resp, body = a.do(t, "PATCH", stale, []byte("aaaa"), "Content-Range", "0-3")
	wantCode(t, "stale chunk on A", resp, body, 416, "BLOB_UPLOAD_INVALID")
	wantRange("stale chunk on A", resp, "0-3")
	if n := a.blobCount(t); n != blobs {
		t.Errorf("%d blobs after a stale chunk, want %d", n, blobs)
	}

	// Chunks racing for the same offset on both: one wins; the others get
	// 416 and leave no part and no lease (their bytes, if stored, are
	// orphans for the GC).
	loc = a.startUpload(t, "app/web")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range 8 {
		e := []*env{a, b}[i%2]
		chunk := fmt.Appendf(nil, "chunk %d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := e.do(t, "PATCH", loc, chunk, "Content-Range", fmt.Sprintf("0-%d", len(chunk)-1))
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 202:
				wins = append(wins, string(chunk))
			case 416:
				wantRange("a chunk that lost", resp, "0-6")
			default:
				t.Errorf("racing chunk: %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d racing chunks won, want 1", len(wins))
	}
	resp, body = b.do(t, "GET", loc, nil)
	wantCode(t, "after the race", resp, body, 204, "")
	wantRange("after the race", resp, "0-6")
	winner := digest.FromString(wins[0]).Encoded()
	if l := leased(); len(l) != 2 || !l[winner] || !l[digest.FromString("bbbb").Encoded()] {
		t.Errorf("leases after the race: %v, want the winner's %s and the stale test's part", l, winner)
	}
	resp, body = a.do(t, "PUT", loc+"?digest="+digest.FromString(wins[0]).String(), nil)
	wantCode(t, "finishing the raced upload", resp, body, 201, "")

	// An expired session (the stale test's) is unknown to both, and its
	// lease ends soon after; a sweep on either deletes its rows.
	c.Add(time.Minute + time.Second)
	for name, e := range map[string]*env{"A": a, "B": b} {
		resp, body = e.do(t, "GET", stale, nil)
		wantCode(t, "GET of an expired upload on "+name, resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
		resp, body = e.do(t, "PATCH", stale, []byte("more"))
		wantCode(t, "PATCH of an expired upload on "+name, resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
	}
	// The leases outlive the session by a margin (5 minutes), no more.
	if l := a.leased(t, c.Now().Add(5*time.Minute)); len(l) != 0 {
		t.Errorf("leases after the expiry and the margin: %v", l)
	}
	if n, err := b.reg.SweepUploads(t.Context()); err != nil || n != 1 {
		t.Errorf("the sweep ended %d sessions (%v), want 1", n, err)
	}
	id := stale[strings.LastIndex(stale, "/")+1:]
	if _, err := a.meta.(meta.Uploads).GetUpload(t.Context(), id); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("the swept session: %v, want meta.ErrNotFound", err)
	}
}
