// Package cache is a host's release cache: each rootfs release an
// instance or a build needs, and each build's source snapshot (a static
// release), is fetched once per host (concurrent starts share one
// fetch), with parallel ranged reads, its bytes verified against its
// sha256, then unpacked once with the safe unpacker (which verifies the
// tree digest) into a tree that is only ever an overlay's read-only lower
// layer. The cache is bounded in bytes of unpacked trees: an entry in use
// is leased and never evicted; unleased entries go least recently used
// first. Entries survive restarts (meta.json beside each tree).
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release/unpack"
)

// Errors.
var (
	ErrDigest = errors.New("release artifact does not match its sha256")
	ErrFull   = errors.New("release cache is full of leased entries")
)

// Options of a cache.
type Options struct {
	MaxBytes int64 // bound on the unpacked trees' bytes; 0: 10 GiB
	Parallel int   // ranged reads at once; 0: 4
	Chunk    int64 // bytes per ranged read; 0: 8 MiB
	Metrics  *metrics.Metrics
}

// Cache is safe for concurrent use.
type Cache struct {
	dir string
	src Source
	o   Options
	sf  singleflight.Group

	mu      sync.Mutex
	entries map[string]*entry
	used    int64
}

type entry struct {
	SHA    string    `json:"sha256"`
	Tree   string    `json:"tree_digest"`
	Bytes  int64     `json:"bytes"`
	Used   time.Time `json:"-"`
	leases int
}

// Lease holds an entry: while it is held the tree is not evicted.
type Lease struct {
	c          *Cache
	SHA        string
	Dir        string // the read-only tree
	TreeDigest string // verified when it was unpacked
	once       sync.Once
}

// Release gives the lease back.
func (l *Lease) Release() {
	l.once.Do(func() {
		l.c.mu.Lock()
		if e := l.c.entries[l.SHA]; e != nil {
			e.leases--
			e.Used = time.Now()
		}
		l.c.mu.Unlock()
	})
}

// Open opens (or makes) the cache in dir, finding the entries an earlier
// process left there.
func Open(dir string, src Source, o Options) (*Cache, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 10 << 30
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Chunk <= 0 {
		o.Chunk = 8 << 20
	}
	c := &Cache{dir: dir, src: src, o: o, entries: map[string]*entry{}}
	for _, d := range []string{"trees", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	os.RemoveAll(filepath.Join(dir, "tmp"))
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
	des, _ := os.ReadDir(filepath.Join(dir, "trees"))
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, "trees", de.Name(), "meta.json"))
		var e entry
		if err != nil || json.Unmarshal(b, &e) != nil || e.SHA != de.Name() {
			os.RemoveAll(filepath.Join(dir, "trees", de.Name()))
			continue
		}
		fi, _ := de.Info()
		e.Used = fi.ModTime()
		c.entries[e.SHA] = &e
		c.used += e.Bytes
	}
	o.Metrics.Gauge("cairn_agent_cache_bytes", func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(c.used) })
	o.Metrics.Gauge("cairn_agent_cache_entries", func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(len(c.entries)) })
	return c, nil
}

func (c *Cache) treeDir(sha string) string { return filepath.Join(c.dir, "trees", sha, "tree") }

// Acquire returns a lease on release sha's tree, fetching, verifying and
// unpacking it first if this host does not hold it. wantTree, if set,
// must equal the tree digest verified on unpacking.
func (c *Cache) Acquire(ctx context.Context, sha, wantTree string) (*Lease, error) {
	if len(sha) != 64 {
		return nil, fmt.Errorf("release %q: not a sha256", sha)
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return nil, fmt.Errorf("release %q: not a sha256", sha)
	}
	for {
		c.mu.Lock()
		if e := c.entries[sha]; e != nil {
			e.leases++
			e.Used = time.Now()
			c.mu.Unlock()
			c.o.Metrics.Inc(`cairn_agent_cache_requests_total{result="hit"}`)
			l := &Lease{c: c, SHA: sha, Dir: c.treeDir(sha), TreeDigest: e.Tree}
			if wantTree != "" && wantTree != e.Tree {
				l.Release()
				return nil, fmt.Errorf("release %s: tree digest %s, want %s", sha, e.Tree, wantTree)
			}
			return l, nil
		}
		c.mu.Unlock()
		_, err, _ := c.sf.Do(sha, func() (any, error) {
			return nil, c.fetch(context.WithoutCancel(ctx), sha)
		})
		if err != nil {
			c.o.Metrics.Inc(`cairn_agent_cache_requests_total{result="error"}`)
			return nil, err
		}
		c.o.Metrics.Inc(`cairn_agent_cache_requests_total{result="miss"}`)
	}
}

// fetch downloads, verifies and unpacks sha, then adds it.
func (c *Cache) fetch(ctx context.Context, sha string) error {
	start := time.Now()
	size, err := c.src.Size(ctx, sha)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Join(c.dir, "tmp"), sha[:12]+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	f, err := os.Create(filepath.Join(tmp, "artifact"))
	if err != nil {
		return err
	}
	defer f.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Parallel)
	for off := int64(0); off < size; off += c.o.Chunk {
		n := min(c.o.Chunk, size-off)
		g.Go(func() error {
			rc, err := c.src.ReadRange(gctx, sha, off, n)
			if err != nil {
				return err
			}
			defer rc.Close()
			w := io.NewOffsetWriter(f, off)
			got, err := io.Copy(w, io.LimitReader(rc, n))
			if err == nil && got != n {
				err = fmt.Errorf("release %s: range %d+%d: short read (%d)", sha, off, n, got)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: %s: got %s", ErrDigest, sha, got)
	}
	c.o.Metrics.Add("cairn_agent_cache_fetched_bytes_total", size)
	tree := filepath.Join(tmp, "entry", "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	toc, err := unpack.Unpack(ctx, f, size, tree, unpack.Options{SkipDevices: true, AllowStatic: true})
	if err != nil {
		return err
	}
	var bytes int64
	for i := range toc.Entries {
		bytes += toc.Entries[i].Size
	}
	e := &entry{SHA: sha, Tree: toc.TreeSHA256, Bytes: bytes, Used: time.Now()}
	js, _ := json.Marshal(e)
	if err := os.WriteFile(filepath.Join(tmp, "entry", "meta.json"), js, 0o600); err != nil {
		return err
	}
	if err := c.makeRoom(bytes); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "entry"), filepath.Join(c.dir, "trees", sha)); err != nil {
		return err
	}
	c.mu.Lock()
	c.entries[sha] = e
	c.used += bytes
	c.mu.Unlock()
	c.o.Metrics.Since("cairn_agent_cache_fetch_seconds", start)
	return nil
}

// makeRoom evicts unleased entries, least recently used first, until n
// more bytes fit.
func (c *Cache) makeRoom(n int64) error {
	c.mu.Lock()
	var victims []*entry
	for _, e := range c.entries {
		if e.leases == 0 {
			victims = append(victims, e)
		}
	}
	sort.Slice(victims, func(i, j int) bool { return victims[i].Used.Before(victims[j].Used) })
	var gone []string
	for _, e := range victims {
		if c.used+n <= c.o.MaxBytes {
			break
		}
		delete(c.entries, e.SHA)
		c.used -= e.Bytes
		gone = append(gone, e.SHA)
	}
	full := c.used+n > c.o.MaxBytes
	c.mu.Unlock()
	for _, sha := range gone {
		c.o.Metrics.Inc("cairn_agent_cache_evictions_total")
		os.RemoveAll(filepath.Join(c.dir, "trees", sha))
	}
	if full {
		return fmt.Errorf("%w: %d bytes more do not fit in %d", ErrFull, n, c.o.MaxBytes)
	}
	return nil
}

// Has reports whether sha is in the cache.
func (c *Cache) Has(sha string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[sha] != nil
}

// Releases returns the sha256s of the releases the cache holds, sorted.
func (c *Cache) Releases() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.entries))
	for sha := range c.entries {
		out = append(out, sha)
	}
	sort.Strings(out)
	return out
}

// TreeDir is where release sha's tree is (or would be) unpacked.
func (c *Cache) TreeDir(sha string) string { return c.treeDir(sha) }
