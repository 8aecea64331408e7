package replica

import (
	"context"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxCached bounds each in-memory cache; a full cache is emptied.
const maxCached = 1 << 14

// stateCache keeps replica states by digest for ttl (ttl < 0: nothing).
type stateCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[digest.Digest]cachedStates
}

type cachedStates struct {
	at     time.Time
	states map[string]string
}

func (c *stateCache) get(d digest.Digest) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[d]
	if !ok || time.Since(e.at) >= c.ttl {
		return nil, false
	}
	return e.states, true
}

func (c *stateCache) put(d digest.Digest, states map[string]string) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[digest.Digest]cachedStates{}
	}
	c.m[d] = cachedStates{at: time.Now(), states: states}
}

func (c *stateCache) forget(d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, d)
}

// verifiedSet remembers the copies (region and digest) this process has
// verified. Blobs never change, so entries do not expire.
type verifiedSet struct {
	mu   sync.Mutex
	keys map[string]bool
	byD  map[digest.Digest][]string
}

func (v *verifiedSet) has(key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys[key]
}

func (v *verifiedSet) add(d digest.Digest, key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil || len(v.keys) >= maxCached {
		v.keys, v.byD = map[string]bool{}, map[digest.Digest][]string{}
	}
	v.keys[key] = true
	v.byD[d] = append(v.byD[d], key)
}

func (v *verifiedSet) forget(d digest.Digest) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range v.byD[d] {
		delete(v.keys, k)
	}
	delete(v.byD, d)
}

// flight runs one call per key at a time; callers that arrive while it
// runs wait for it (or for their ctx to end) and share its result.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	err  error
}

func (f *flight) do(ctx context.Context, key string, fn func() error) error {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.err = fn()
	return c.err
}

// downSet remembers regions that failed a read, until a deadline each.
type downSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (s *downSet) is(region string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.until[region])
}

func (s *downSet) mark(region string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]time.Time{}
	}
	s.until[region] = time.Now().Add(d)
}
