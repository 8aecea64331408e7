package router

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// table is the router's view of the instances at one generation:
// version id → pool of its healthy instances. Immutable once published.
type table struct {
	gen      uint64
	pools    map[string]*pool
	all      map[string]*backend // key: instance id + " " + address
	coming   map[string]bool     // version id → an instance is pending or starting
	placed   map[string]bool     // version id → it has an instance record, in any state
	replicas map[string]int      // deployment id → replicas (> 0 only)
	autostop map[string]bool     // deployment id → its desired state sets autostop
}

// pool is the healthy instances of one version.
type pool struct {
	backends []*backend
}

// backend is one instance at one address. It outlives tables: a reload
// keeps the backend of an instance whose address did not change, with
// its count of requests in flight.
type backend struct {
	id, addr  string
	inflight  atomic.Int64
	downUntil atomic.Int64 // unix nanos: a connect failed; avoided until then
	idle      idleConns    // kept-alive connections of the router's own client
	probing   atomic.Bool  // a probe dials it (markDown)
}

func (b *backend) down(now int64) bool { return b.downUntil.Load() > now }

// markDown takes b out of the picks after a failed connect, until a
// connect to it succeeds: a probe dials it every ProbeEvery, and ends when
// one succeeds, when b leaves the table (its instance removed, its host
// lost) or when Run returns. Picks still take a down instance when every
// other one was tried or is down too.
func (rt *Router) markDown(b *backend) {
	b.downUntil.Store(math.MaxInt64)
	if !b.probing.CompareAndSwap(false, true) {
		return
	}
	go rt.probe(b)
}

func (rt *Router) probe(b *backend) {
	tick := time.NewTicker(ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-rt.done:
			b.probing.Store(false)
			return
		case <-tick.C:
		}
		if t := rt.table.Load(); t == nil || t.all[b.id+" "+b.addr] != b {
			b.probing.Store(false)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
		c, err := rt.dial(ctx, "tcp", b.addr)
		cancel()
		if err == nil {
			c.Close()
			// Probing ends before the mark goes: a failure in between
			// marks it again and starts a new probe.
			b.probing.Store(false)
			b.downUntil.Store(0)
			rt.log.Debug("router: instance answers again", "instance", b.id, "addr", b.addr)
			return
		}
	}
}

// reload reads the instances and hosts and publishes a new table. Calls
// are serialised; one that finds a table already as new as the generation
// it was called at returns at once.
func (rt *Router) reload(ctx context.Context) error {
	want := rt.want.Load()
	rt.loadMu.Lock()
	defer rt.loadMu.Unlock()
	old := rt.table.Load()
	if old != nil && old.gen >= want && want > 0 {
		return nil
	}
	gen := rt.want.Load() // what is read below is at least this new
	ps, err := rt.store.PlacementState(ctx)
	if err != nil {
		return err
	}
	lost := map[string]bool{}
	for _, h := range ps.Hosts {
		if h.State == hostapi.HostLost {
			lost[h.ID] = true
		}
	}
	t := &table{gen: gen, pools: map[string]*pool{}, all: map[string]*backend{},
		coming: map[string]bool{}, placed: map[string]bool{}, replicas: ps.Replicas, autostop: map[string]bool{}}
	for dep, d := range ps.Desired {
		if d.Autostop != "" {
			t.autostop[dep] = true
		}
	}
	for i := range ps.Instances {
		in := &ps.Instances[i]
		t.placed[in.VersionID] = true
		if (in.State == hostapi.StatePending || in.State == hostapi.StateStarting) && !lost[in.HostID] {
			t.coming[in.VersionID] = true
		}
		if !healthy(in, lost) {
			continue
		}
		key := in.ID + " " + in.Addr
		b := (*backend)(nil)
		if old != nil {
			b = old.all[key]
		}
		if b == nil {
			b = &backend{id: in.ID, addr: in.Addr}
		}
		t.all[key] = b
		p := t.pools[in.VersionID]
		if p == nil {
			p = &pool{}
			t.pools[in.VersionID] = p
		}
		p.backends = append(p.backends, b)
	}
	rt.table.Store(t)
	if old != nil {
		for k, b := range old.all {
			if t.all[k] == nil { // gone: requests in flight finish, nothing is kept
				b.idle.sweep(time.Time{}, true)
			}
		}
	}
	rt.pubMu.Lock()
	close(rt.changed)
	rt.changed = make(chan struct{})
	rt.pubMu.Unlock()
	if old == nil || len(old.all) != len(t.all) || changed(old, t) {
		rt.log.Debug("router: instances", "healthy", len(t.all), "versions", len(t.pools), "gen", gen)
	}
	return nil
}

// hold waits, at most HoldFor, for a healthy instance of versionID while
// one is coming, or at most WakeHoldFor when it woke the version (see
// ServeVersion); nil when none came.
func (rt *Router) hold(ctx context.Context, depID, versionID string, active bool) *pool {
	if rt.held.Add(1) > maxHeld {
		rt.held.Add(-1)
		return nil
	}
	defer rt.held.Add(-1)
	rt.counts.held.Add(1)
	start := time.Now()
	timer := time.NewTimer(HoldFor)
	defer timer.Stop()
	woke := false
	for {
		rt.pubMu.Lock()
		ch := rt.changed
		rt.pubMu.Unlock()
		t := rt.table.Load()
		if t == nil {
			return nil
		}
		if p := t.pools[versionID]; p != nil && len(p.backends) > 0 {
			return p
		}
		switch {
		case t.coming[versionID]:
		case rt.wakes.store != nil && !t.placed[versionID] && t.sleeps(depID, active):
			if !woke {
				woke = true
				timer.Reset(WakeHoldFor - time.Since(start))
			}
			rt.wake(ctx, depID, versionID)
		case active && t.replicas[depID] > 0:
		default:
			return nil
		}
		var again <-chan time.Time // wake again if nothing was placed meanwhile
		if woke && !t.placed[versionID] {
			again = time.After(wakeEvery)
		}
		select {
		case <-ch:
		case <-again:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func changed(a, b *table) bool {
	for k := range a.all {
		if b.all[k] == nil {
			return true
		}
	}
	return false
}

// pick chooses the instance for one attempt by power of two choices: of
// two distinct instances drawn at random among those not yet tried and
// not marked down, the one with fewer requests in flight. When every
// untried instance is down, down ones are drawn too (a mark may be
// stale); nil when all were tried.
func (p *pool) pick(tried []*backend) *backend {
	now := time.Now().UnixNano()
	if bs := p.backends; len(tried) == 0 { // the common case, without a scan
		switch len(bs) {
		case 1:
			if !bs[0].down(now) {
				return bs[0]
			}
		default:
			i, j := rand.IntN(len(bs)), rand.IntN(len(bs)-1)
			if j >= i {
				j++
			}
			a, b := bs[i], bs[j]
			if !a.down(now) && !b.down(now) {
				if a.inflight.Load() <= b.inflight.Load() {
					return a
				}
				return b
			}
		}
	}
	var a, b *backend
	var n int
	for pass := 0; pass < 2 && a == nil; pass++ {
		n = 0
		for _, c := range p.backends {
			if isTried(c, tried) || pass == 0 && c.down(now) {
				continue
			}
			// Reservoir-sample two distinct candidates in one pass.
			n++
			switch {
			case n == 1:
				a = c
			case n == 2:
				b = c
				if rand.IntN(2) == 0 {
					a, b = b, a
				}
			default:
				if j := rand.IntN(n); j == 0 {
					a = c
				} else if j == 1 {
					b = c
				}
			}
		}
	}
	if b == nil || a.inflight.Load() <= b.inflight.Load() {
		return a
	}
	return b
}

func isTried(b *backend, tried []*backend) bool {
	for _, t := range tried {
		if t == b {
			return true
		}
	}
	return false
}
