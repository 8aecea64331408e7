package publish

import (
	"sync"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// tocCache keeps the parsed TOCs (and their stored frames) of the few
// static releases an incremental publish most likely reads again: the
// releases it stored last, which become the deployments' active ones. A
// release is content-addressed, so a cached TOC never goes stale; a TOC is
// not changed once parsed (its index is built then), so publishes share
// it. The caller still takes its GC lease on the release and checks its
// record first: the cache saves only the ranged read, the decompression
// and the parse.
type tocCache struct {
	mu   sync.Mutex
	list []*cachedTOC // most recent last
}

type cachedTOC struct {
	rel    string
	size   int64
	toc    *release.TOC
	once   sync.Once
	frames []release.StoredFrame

	contentsOnce sync.Once
	cs           []meta.Content
}

// The bounds of tocCache: a few TOCs of up to ~50 MB parsed each.
const (
	tocCacheLen        = 4
	tocCacheMaxEntries = 100_000
)

// get returns the cached TOC of release rel, if any.
func (c *tocCache) get(rel string) *cachedTOC {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range c.list {
		if t.rel == rel {
			c.list = append(append(c.list[:i:i], c.list[i+1:]...), t)
			return t
		}
	}
	return nil
}

// put caches the TOC of release rel, of size bytes.
func (c *tocCache) put(rel string, size int64, toc *release.TOC) *cachedTOC {
	if toc == nil || toc.Version != release.FormatVersion || len(toc.Entries) > tocCacheMaxEntries {
		return &cachedTOC{rel: rel, size: size, toc: toc}
	}
	if t := c.get(rel); t != nil {
		return t
	}
	t := &cachedTOC{rel: rel, size: size, toc: toc}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.list) == tocCacheLen {
		c.list = append(c.list[:0:0], c.list[1:]...)
	}
	c.list = append(c.list, t)
	return t
}

// storedFrames is release.StoredFrames of t's TOC, computed once.
func (t *cachedTOC) storedFrames() []release.StoredFrame {
	t.once.Do(func() { t.frames = release.StoredFrames(t.toc) })
	return t.frames
}

// contents is Contents of t's release, computed once.
func (t *cachedTOC) contents() []meta.Content {
	t.contentsOnce.Do(func() { t.cs = Contents(t.rel, t.toc) })
	return t.cs
}
