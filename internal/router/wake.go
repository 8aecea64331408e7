package router

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Scale to zero (docs/design.md, "Scale to zero"): a request for a
// version that has no instance at all, when the version is a preview
// (not active) or its deployment sets autostop, wakes it: the router
// records a wake (meta.Wakes.Wake, which the scheduler hears of through
// the change feed and answers with a placement) and holds the request, at
// most WakeHoldFor, until an instance is healthy. The router never places
// an instance itself. Requests for such versions are counted per version
// and reported every TouchEvery (meta.Wakes.TouchWakes): the scheduler
// stops the instances of a version whose last request is older than its
// idle time.
const (
	// WakeHoldFor bounds how long a request that woke a version waits for
	// its first healthy instance (a cold start: placement, the release
	// fetched and verified on the host, the process started and checked).
	WakeHoldFor = 30 * time.Second
	// wakeEvery: a version is woken again at most this often while
	// requests wait for it (in case the first wake was not acted on, e.g.
	// no scheduler led then).
	wakeEvery = 2 * time.Second
	// TouchEvery is how often the requests seen are reported: the
	// accuracy of the idle time.
	TouchEvery = time.Second
)

// wakeState is the router's record of one version that may sleep.
type wakeState struct {
	dep      string
	hit      atomic.Bool  // a request came since the last report
	lastWake atomic.Int64 // unix nanos of the last Wake sent
}

type wakes struct {
	store meta.Wakes // nil: the store cannot wake; nothing sleeps
	m     sync.Map   // version id → *wakeState
	woken atomic.Uint64
}

func (w *wakes) state(dep, ver string) *wakeState {
	if s, ok := w.m.Load(ver); ok {
		return s.(*wakeState)
	}
	s, _ := w.m.LoadOrStore(ver, &wakeState{dep: dep})
	return s.(*wakeState)
}

// sleeps reports whether version ver of depID is one scale to zero
// applies to: a preview, or the active version of an autostop deployment.
func (t *table) sleeps(depID string, active bool) bool {
	return !active || t.autostop[depID]
}

// seen notes a request for a version that may sleep (on the hot path: a
// map load and an atomic flag).
func (rt *Router) seen(t *table, depID, versionID string, active bool) {
	if rt.wakes.store == nil || t == nil || !t.sleeps(depID, active) {
		return
	}
	if s := rt.wakes.state(depID, versionID); !s.hit.Load() {
		s.hit.Store(true)
	}
}

// wake asks for an instance of versionID, unless it did so less than
// wakeEvery ago.
func (rt *Router) wake(ctx context.Context, depID, versionID string) {
	s := rt.wakes.state(depID, versionID)
	now := time.Now().UnixNano()
	last := s.lastWake.Load()
	if now-last < int64(wakeEvery) || !s.lastWake.CompareAndSwap(last, now) {
		return
	}
	s.hit.Store(true)
	rt.wakes.woken.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
	defer cancel()
	if err := rt.wakes.store.Wake(ctx, meta.WakeRef{DeploymentID: depID, VersionID: versionID}); err != nil {
		rt.log.Warn("router: wake failed", "deployment", depID, "version", versionID, "err", err)
		s.lastWake.Store(0)
		return
	}
	rt.log.Info("router: woke version", "deployment", depID, "version", versionID)
}

// touch reports the versions requested since the last call; versions not
// requested since are forgotten.
func (rt *Router) touch(ctx context.Context) {
	var refs []meta.WakeRef
	rt.wakes.m.Range(func(k, v any) bool {
		s := v.(*wakeState)
		if s.hit.Swap(false) {
			refs = append(refs, meta.WakeRef{DeploymentID: s.dep, VersionID: k.(string)})
		} else if time.Since(time.Unix(0, s.lastWake.Load())) > wakeEvery {
			rt.wakes.m.Delete(k)
		}
		return true
	})
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := rt.wakes.store.TouchWakes(ctx, refs); err != nil && ctx.Err() == nil {
		rt.log.Warn("router: reporting requests failed", "versions", len(refs), "err", err)
	}
}

// touchLoop reports requests every TouchEvery until ctx ends (and once
// more then).
func (rt *Router) touchLoop(ctx context.Context) {
	if rt.wakes.store == nil {
		return
	}
	t := time.NewTicker(TouchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rt.touch(context.WithoutCancel(ctx))
			return
		case <-t.C:
			rt.touch(ctx)
		}
	}
}
