package edge

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// countingBlobs counts the ranged reads of a real store.
type countingBlobs struct {
	blob.Store
	opens atomic.Int64
}

func (c *countingBlobs) Open(ctx context.Context, d digest.Digest, off, n int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, d, off, n)
}

// countingMeta counts the lookups a route resolution makes.
type countingMeta struct {
	Store
	calls atomic.Int64
}

func (c *countingMeta) GetDeployment(ctx context.Context, s string) (*meta.Deployment, error) {
	c.calls.Add(1)
	return c.Store.GetDeployment(ctx, s)
}

func (c *countingMeta) GetVersion(ctx context.Context, id string) (*meta.Version, error) {
	c.calls.Add(1)
	return c.Store.GetVersion(ctx, id)
}

// TestWarmPathAndDedup: concurrent cold requests share one route
// resolution and one read of the file; warm requests touch neither the
// metadata store nor the blobs.
func TestWarmPathAndDedup(t *testing.T) {
	var cb *countingBlobs
	var cm *countingMeta
	v := newEnv(t, Config{}, func(e *Edge) {
		cb, cm = &countingBlobs{Store: e.blobs}, &countingMeta{Store: e.meta}
		e.blobs, e.meta = cb, cm
	})
	big := text(9, 200<<10)
	v.publish(v.deploy("site"), map[string]string{"big.txt": big, "a.css": "a{}"}, true)

	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, body := v.mustGet("site.localhost", "/big.txt", 200); string(body) != big {
				t.Error("body differs")
			}
		}()
	}
	wg.Wait()
	if n := cm.calls.Load(); n != 2 { // deployment, version
		t.Errorf("%d metadata lookups for one route", n)
	}
	if n := cb.opens.Load(); n != 2 { // tail with footer and TOC, file
		t.Errorf("%d blob reads, want 2", n)
	}
	v.mustGet("site.localhost", "/a.css", 200)
	calls, opens := cm.calls.Load(), cb.opens.Load()
	for range 50 {
		v.mustGet("site.localhost", "/big.txt", 200)
		v.mustGet("site.localhost", "/a.css", 200, "If-None-Match: x")
		v.mustGet("site.localhost", "/big.txt", 200, "Accept-Encoding: zstd")
	}
	if cm.calls.Load() != calls || cb.opens.Load() != opens+1 { // +1: the zstd representation once
		t.Errorf("warm requests: %d metadata lookups, %d blob reads", cm.calls.Load()-calls, cb.opens.Load()-opens)
	}
}
