package cache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

func needRoot(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the cache's tests need root (the unpacker sets owners)")
		}
		t.Skip("the cache's tests need root")
	}
}

// tree makes a small rootfs release of n bytes of content named name.
func tree(t *testing.T, art *runtimetest.Artifacts, name string, n int) *release.Result {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat(name, n/len(name))), 0o644)
	res, b := runtimetest.Pack(t, dir)
	art.Add(res.SHA256, b)
	return res
}

func open(t *testing.T, dir string, art *runtimetest.Artifacts, max int64) *cache.Cache {
	c, err := cache.Open(dir, &cache.HTTP{Base: art.URL, Token: "test-token"}, cache.Options{MaxBytes: max, Chunk: 4096, Parallel: 3, Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFetchOnceVerifyAndReopen(t *testing.T) {
	needRoot(t)
	art := runtimetest.Serve(t)
	res := tree(t, art, "a", 100000)
	dir := t.TempDir()
	c := open(t, dir, art, 1<<20)
	var wg sync.WaitGroup
	leases := make([]*cache.Lease, 8)
	for i := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.Acquire(context.Background(), res.SHA256, res.TOC.TreeSHA256)
			if err != nil {
				t.Error(err)
				return
			}
			leases[i] = l
		}()
	}
	wg.Wait()
	chunks := (res.Size + 4095) / 4096
	if got := art.Requests.Load(); got != 1+chunks {
		t.Fatalf("%d requests for 8 concurrent acquires, want 1 HEAD + %d ranges", got, chunks)
	}
	if b, err := os.ReadFile(filepath.Join(leases[0].Dir, "a")); err != nil || len(b) != 100000 {
		t.Fatalf("tree: %d bytes, %v", len(b), err)
	}
	if leases[0].TreeDigest != res.TOC.TreeSHA256 {
		t.Fatal("tree digest")
	}
	if _, err := c.Acquire(context.Background(), res.SHA256, strings.Repeat("0", 64)); err == nil {
		t.Fatal("a wrong tree digest was accepted")
	}
	// A new process finds the entry without fetching.
	c2 := open(t, dir, art, 1<<20)
	before := art.Requests.Load()
	if _, err := c2.Acquire(context.Background(), res.SHA256, ""); err != nil || art.Requests.Load() != before {
		t.Fatalf("reopen: %v, %d requests", err, art.Requests.Load()-before)
	}
}

func TestWrongSHA256StoresNothing(t *testing.T) {
	needRoot(t)
	art := runtimetest.Serve(t)
	res := tree(t, art, "b", 1000)
	_, b := runtimetest.Pack(t, t.TempDir())
	wrong := strings.Repeat("ab", 32)
	art.Add(wrong, b)
	dir := t.TempDir()
	c := open(t, dir, art, 1<<20)
	if _, err := c.Acquire(context.Background(), wrong, ""); !errors.Is(err, cache.ErrDigest) {
		t.Fatalf("err %v, want ErrDigest", err)
	}
	des, _ := os.ReadDir(filepath.Join(dir, "trees"))
	tmp, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(des)+len(tmp) != 0 || c.Has(wrong) {
		t.Fatalf("left behind: %v %v", des, tmp)
	}
	if _, err := c.Acquire(context.Background(), res.SHA256, ""); err != nil {
		t.Fatal(err)
	}
}

func TestEvictLRUNeverLeased(t *testing.T) {
	needRoot(t)
	art := runtimetest.Serve(t)
	x := tree(t, art, "x", 40000)
	y := tree(t, art, "y", 40000)
	z := tree(t, art, "z", 40000)
	c := open(t, t.TempDir(), art, 100000) // two fit
	ctx := context.Background()
	lx, err := c.Acquire(ctx, x.SHA256, "")
	if err != nil {
		t.Fatal(err)
	}
	ly, err := c.Acquire(ctx, y.SHA256, "")
	if err != nil {
		t.Fatal(err)
	}
	// Both leased: z does not fit.
	if _, err := c.Acquire(ctx, z.SHA256, ""); !errors.Is(err, cache.ErrFull) {
		t.Fatalf("err %v, want ErrFull", err)
	}
	ly.Release()
	lz, err := c.Acquire(ctx, z.SHA256, "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Has(x.SHA256) || c.Has(y.SHA256) || !c.Has(z.SHA256) {
		t.Fatal("want y (unleased) evicted, x (leased) kept")
	}
	lx.Release()
	lz.Release()
	if _, err := c.Acquire(ctx, y.SHA256, ""); err != nil {
		t.Fatal(err)
	}
	if c.Has(x.SHA256) || !c.Has(z.SHA256) {
		t.Fatal("want x (least recently used) evicted")
	}
}
