package edge

import (
	"context"
	"errors"
	"sync"
)

var errFetchPanicked = errors.New("edge: shared fetch panicked")

// lru is a least-recently-used cache bounded by the sum of its items'
// costs. An item costing more than the bound is not kept. Safe for
// concurrent use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int64
	used  int64
	items map[K]*node[K, V]
	ring  node[K, V] // sentinel: ring.next is the most recently used

	hits, misses uint64 // of get
}

type node[K comparable, V any] struct {
	key        K
	val        V
	cost       int64
	prev, next *node[K, V]
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	c := &lru[K, V]{max: max, items: map[K]*node[K, V]{}}
	c.ring.next, c.ring.prev = &c.ring, &c.ring
	return c
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	n, ok := c.items[k]
	if ok {
		c.unlink(n)
		c.pushFront(n)
		c.hits++
	} else {
		c.misses++
	}
	c.mu.Unlock()
	if !ok {
		var zero V
		return zero, false
	}
	return n.val, true
}

// add stores v under k (replacing any earlier value) and evicts the least
// recently used items until the costs fit the bound again.
func (c *lru[K, V]) add(k K, v V, cost int64) {
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[k]; ok {
		c.unlink(old)
		c.used -= old.cost
	}
	n := &node[K, V]{key: k, val: v, cost: cost}
	c.items[k] = n
	c.pushFront(n)
	c.used += cost
	for c.used > c.max {
		last := c.ring.prev
		c.unlink(last)
		delete(c.items, last.key)
		c.used -= last.cost
	}
}

// stats returns the number of items and the sum of their costs.
func (c *lru[K, V]) stats() (n int, used int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.used
}

// lookups returns how many gets found their key, and how many did not.
func (c *lru[K, V]) lookups() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *lru[K, V]) unlink(n *node[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (c *lru[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = &c.ring, c.ring.next
	c.ring.next.prev = n
	c.ring.next = n
}

// flight deduplicates concurrent fetches of the same key: one caller runs
// the fetch, the others wait for its result (or for their own ctx).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fetch once for all concurrent callers with key k. The fetch gets
// a context detached from the first caller's cancellation and bounded by
// fetchTimeout, so one client going away does not fail the others.
func (f *flight[K, V]) do(ctx context.Context, k K, fetch func(context.Context) (V, error)) (V, error) {
	f.mu.Lock()
	if c, ok := f.calls[k]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	if f.calls == nil {
		f.calls = map[K]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{})}
	f.calls[k] = c
	f.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer func() {
		cancel()
		f.mu.Lock()
		delete(f.calls, k)
		f.mu.Unlock()
		close(c.done)
	}()
	c.err = errFetchPanicked // replaced unless fetch panics
	c.val, c.err = fetch(fctx)
	return c.val, c.err
}
