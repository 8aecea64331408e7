package sched

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// Store is what the scheduler reads and writes.
type Store interface {
	meta.Hosts
	meta.Scheduling
	meta.Wakes
	meta.Watcher // a change (another process's wake, a heartbeat) starts the next run at once
	GetDeployment(ctx context.Context, id string) (*meta.Deployment, error)
	GetVersion(ctx context.Context, id string) (*meta.Version, error)
}

// Defaults of a Scheduler's zero fields.
const (
	DefaultHostLostAfter = 10 * time.Second
	DefaultInterval      = 500 * time.Millisecond
	DefaultGrace         = 5 * time.Second
	// DefaultPreviewIdle is how long a preview (non-active) version's
	// instance stays without a request when its deployment sets no
	// autostop (docs/design.md, "Scale to zero").
	DefaultPreviewIdle = 15 * time.Minute
	// LeaderRetry is how often a standby tries to take the leadership.
	LeaderRetry = time.Second
	// LeaderName names the scheduler's leadership (meta.Leader).
	LeaderName = "sched"
)

// Scheduler is the sched role: while it leads (meta.Leader), every
// Interval it marks silent hosts lost, drives the running rollouts and
// places instances.
type Scheduler struct {
	Store  Store
	Leader meta.Leader
	Now    func() time.Time // the clock of lost hosts and rollout deadlines (default time.Now)
	// HostLostAfter: a host silent this long is lost (--host-lost-after).
	HostLostAfter time.Duration
	Interval      time.Duration
	// Grace is how long the old version's instances stay after a
	// rollout's switch, so that requests in flight on them finish; the
	// agent then stops them (SIGTERM, and SIGKILL after its own grace).
	Grace time.Duration
	Log   *slog.Logger
	// Runnable, when set, says whether version v of d can run on a host
	// (the API's: a rootfs version with a runtime, or an oci version whose
	// rootfs it can derive). Unset: versions with a runtime only, so an
	// oci deployment is placed by a scheduler that runs next to an API.
	Runnable func(ctx context.Context, d *meta.Deployment, v *meta.Version) bool
	// PreviewIdle: a preview version's instance without a request this
	// long stops, unless its deployment's autostop says otherwise
	// (default DefaultPreviewIdle).
	PreviewIdle time.Duration

	kick     chan struct{}
	kickOnce sync.Once
	mu       sync.Mutex
	keep     map[string]kept // deployment → the old version kept after a switch
}

type kept struct {
	version string
	until   time.Time
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Scheduler) kicks() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Kick asks for a run soon (after a change made in this process).
func (s *Scheduler) Kick() {
	select {
	case s.kicks() <- struct{}{}:
	default:
	}
}

// Run takes part in the election until ctx ends: it tries to lead every
// LeaderRetry, and while it leads, runs Once every Interval (and on
// Kick). It returns nil when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		lost, release, err := s.Leader.TryLead(ctx, LeaderName)
		if err == nil {
			s.log().Info("scheduler: leading")
			s.lead(ctx, lost)
			release()
			s.log().Info("scheduler: no longer leading")
		} else if !errors.Is(err, meta.ErrConflict) {
			s.log().Warn("scheduler: election", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(LeaderRetry):
		}
	}
}

func (s *Scheduler) lead(ctx context.Context, lost <-chan struct{}) {
	every := s.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// A store that announces changes (another process's wake, a heartbeat
	// that moves an instance) makes the next run start at once.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := s.Store.Watch(wctx)
	for {
		if err := s.Once(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-lost:
			return
		case <-t.C:
		case <-s.kicks():
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
	}
}

// Once marks silent hosts lost, drives the running rollouts (progress,
// switch when enough target instances are healthy, fail past the
// deadline) and places instances (applied only if the placement did not
// move meanwhile; tried again a few times if it did).
func (s *Scheduler) Once(ctx context.Context) error {
	lostAfter := s.HostLostAfter
	if lostAfter <= 0 {
		lostAfter = DefaultHostLostAfter
	}
	if _, err := s.Store.MarkLostHosts(ctx, s.now().Add(-lostAfter), "sched"); err != nil {
		return err
	}
	var err error
	for range 5 {
		if err = s.once(ctx); !errors.Is(err, meta.ErrConflict) {
			return err
		}
	}
	return err
}

func (s *Scheduler) once(ctx context.Context) error {
	ps, err := s.Store.PlacementState(ctx)
	if err != nil {
		return err
	}
	moved, err := s.rollouts(ctx, ps)
	if err != nil {
		return err
	}
	if moved {
		if ps, err = s.Store.PlacementState(ctx); err != nil {
			return err
		}
	}
	snap, names, err := s.snapshot(ctx, ps)
	if err != nil {
		return err
	}
	plan := Place(snap)
	if len(plan.Create) == 0 && len(plan.Remove) == 0 {
		return nil
	}
	create := make([]meta.NewInstance, 0, len(plan.Create))
	for _, p := range plan.Create {
		create = append(create, meta.NewInstance{ID: names[p.Deployment] + "-" + randomHex(4),
			DeploymentID: p.Deployment, VersionID: p.Version, HostID: p.Host})
	}
	return s.Store.ApplyPlacement(ctx, ps.Gen, create, plan.Remove, "sched")
}

// desired is depID's desired state in ps (the replica count alone when
// it never set one).
func desired(ps *meta.PlacementState, depID string) meta.Desired {
	d, ok := ps.Desired[depID]
	if !ok {
		d.Replicas = ps.Replicas[depID]
	}
	return d
}

// rollouts records progress of every running rollout and finishes those
// that are done; moved says whether any finished.
func (s *Scheduler) rollouts(ctx context.Context, ps *meta.PlacementState) (bool, error) {
	moved := false
	for _, ro := range ps.Rollouts {
		want := desired(ps, ro.DeploymentID).Wanted()
		healthy := 0
		for _, in := range ps.Instances {
			if in.DeploymentID == ro.DeploymentID && in.VersionID == ro.ToVersionID && in.State == hostapi.StateHealthy {
				healthy++
			}
		}
		if err := s.Store.ProgressRollout(ctx, ro.ID, healthy, want, "sched"); err != nil && !errors.Is(err, meta.ErrConflict) {
			return moved, err
		}
		var err error
		switch {
		case healthy >= want:
			_, err = s.Store.FinishRollout(ctx, ro.ID, true, "", "sched")
			if err == nil && desired(ps, ro.DeploymentID).Autostop != "" {
				// The new active version of an autostop deployment starts
				// its idle time at the switch, as if a request came.
				err = s.Store.TouchWakes(ctx, []meta.WakeRef{{DeploymentID: ro.DeploymentID, VersionID: ro.ToVersionID}})
			}
			if err == nil && ro.FromVersionID != nil {
				s.mu.Lock()
				if s.keep == nil {
					s.keep = map[string]kept{}
				}
				grace := s.Grace
				if grace <= 0 {
					grace = DefaultGrace
				}
				s.keep[ro.DeploymentID] = kept{*ro.FromVersionID, s.now().Add(grace)}
				s.mu.Unlock()
			}
		case !s.now().Before(ro.Deadline):
			_, err = s.Store.FinishRollout(ctx, ro.ID, false,
				fmt.Sprintf("%d of %d instances healthy by the deadline", healthy, want), "sched")
		default:
			continue
		}
		if err != nil && !errors.Is(err, meta.ErrConflict) {
			return moved, err
		}
		moved = true
	}
	return moved, nil
}

// snapshot turns ps into Place's input; names maps deployment ids to
// names (instance ids start with them).
func (s *Scheduler) snapshot(ctx context.Context, ps *meta.PlacementState) (Snapshot, map[string]string, error) {
	var snap Snapshot
	for _, h := range ps.Hosts {
		snap.Hosts = append(snap.Hosts, Host{ID: h.ID, State: h.State, Region: h.Region, Isolation: h.Isolation,
			Capacity: h.Capacity, Cached: h.Cached})
	}
	for _, in := range ps.Instances {
		snap.Instances = append(snap.Instances, Instance{ID: in.ID, Deployment: in.DeploymentID,
			Version: in.VersionID, Host: in.HostID, State: in.State})
	}
	running := map[string]meta.Rollout{}
	deps := map[string]bool{}
	for _, ro := range ps.Rollouts {
		running[ro.DeploymentID] = ro
		deps[ro.DeploymentID] = true
	}
	for id := range ps.Replicas {
		deps[id] = true
	}
	wakes := wakeIndex{}
	for _, w := range ps.Wakes {
		deps[w.DeploymentID] = true
		if wakes[w.DeploymentID] == nil {
			wakes[w.DeploymentID] = map[string]time.Time{}
		}
		wakes[w.DeploymentID][w.VersionID] = w.LastRequest
	}
	names := map[string]string{}
	s.mu.Lock()
	keep := map[string]kept{}
	for dep, k := range s.keep {
		if s.now().Before(k.until) {
			keep[dep] = k
		} else {
			delete(s.keep, dep)
		}
	}
	s.mu.Unlock()
	for depID := range deps {
		w, ok, err := s.want(ctx, ps, depID, running, keep, wakes[depID])
		if err != nil {
			return snap, nil, err
		}
		if ok {
			names[depID] = w.name
			snap.Wants = append(snap.Wants, w.Want)
		}
	}
	return snap, names, nil
}

type namedWant struct {
	Want
	name string
}

// want is what deployment depID wants; ok is false when it wants nothing
// runnable (deleted, nothing active, not a dynamic version, collected).
func (s *Scheduler) want(ctx context.Context, ps *meta.PlacementState, depID string, running map[string]meta.Rollout,
	keep map[string]kept, wakes map[string]time.Time) (namedWant, bool, error) {
	d, err := s.Store.GetDeployment(ctx, depID)
	if err != nil {
		return namedWant{}, false, err
	}
	if d.ActiveVersionID == nil || d.DeletedAt != nil {
		return namedWant{}, false, nil
	}
	v, err := s.Store.GetVersion(ctx, *d.ActiveVersionID)
	if err != nil {
		return namedWant{}, false, err
	}
	if !s.runnable(ctx, d, v) {
		return namedWant{}, false, nil // not runnable (yet): an oci version runs from its derived rootfs
	}
	ds := desired(ps, depID)
	w := Want{Deployment: d.ID, Version: v.ID, Release: v.ArtifactSHA256, Replicas: ds.Replicas,
		Limits: hostapi.Limits{CPU: ds.CPU, MemoryBytes: ds.MemoryBytes}, Isolation: ds.Isolation}
	if r := ds.Regions; r != nil {
		w.Spread = r.Spread
		if len(r.Count) > 0 {
			w.Regions = r.Count
		}
	}
	ro, rolling := running[depID]
	if ds.Autostop != "" && !rolling && !s.awake(wakes, v.ID, s.idle(ds, false)) {
		w.Replicas = 0 // asleep: no instance until a request wakes it
	}
	if rolling && ro.ToVersionID != v.ID {
		tv, err := s.Store.GetVersion(ctx, ro.ToVersionID)
		if err != nil {
			return namedWant{}, false, err
		}
		if s.runnable(ctx, d, tv) {
			w.Target, w.TargetRelease = tv.ID, tv.ArtifactSHA256
		}
	}
	if k, ok := keep[depID]; ok && k.version != v.ID {
		w.Keep = []string{k.version}
	}
	vers := make([]string, 0, len(wakes))
	for ver := range wakes {
		vers = append(vers, ver)
	}
	sort.Strings(vers)
	for _, ver := range vers {
		if ver == v.ID || ver == w.Target || !s.awake(wakes, ver, s.idle(ds, true)) {
			continue
		}
		pv, err := s.Store.GetVersion(ctx, ver)
		if err != nil {
			return namedWant{}, false, err
		}
		if s.runnable(ctx, d, pv) {
			w.Previews = append(w.Previews, Preview{Version: pv.ID, Release: pv.ArtifactSHA256})
		}
	}
	return namedWant{w, d.Name}, true, nil
}

// idle is how long version ver of a deployment with desired state ds
// runs without a request: its autostop, or for a preview version
// without one PreviewIdle. 0: forever (an active version without
// autostop).
func (s *Scheduler) idle(ds meta.Desired, preview bool) time.Duration {
	if ds.Autostop != "" {
		if d, err := time.ParseDuration(ds.Autostop); err == nil && d > 0 {
			return d
		}
	}
	if !preview {
		return 0
	}
	if s.PreviewIdle > 0 {
		return s.PreviewIdle
	}
	return DefaultPreviewIdle
}

// wakeIndex is the last request of each woken version (meta.Wakes), by
// deployment and version id.
type wakeIndex map[string]map[string]time.Time

// awake reports whether version ver had a request (wakes: its
// deployment's) within idle (0: always awake).
func (s *Scheduler) awake(wakes map[string]time.Time, ver string, idle time.Duration) bool {
	if idle == 0 {
		return true
	}
	last, ok := wakes[ver]
	return ok && s.now().Sub(last) < idle
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Scheduler) runnable(ctx context.Context, d *meta.Deployment, v *meta.Version) bool {
	if s.Runnable != nil {
		return s.Runnable(ctx, d, v)
	}
	return v.Runtime != nil && v.Status != meta.StatusCollected
}
