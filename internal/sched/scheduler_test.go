package sched

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// world is a store with hosts whose "agents" are this test: it reports
// instances healthy (or not) by heartbeats, on a fake clock shared with
// the store and the scheduler.
type world struct {
	t     *testing.T
	store *sqlite.Store
	clock *fakeclock.Clock
	s     *Scheduler
	dep   *meta.Deployment
	vers  []*meta.Version
}

func newWorld(t *testing.T, hosts ...string) *world {
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"), sqlite.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := &world{t: t, store: store, clock: clock,
		s: &Scheduler{Store: store, Leader: store, Now: clock.Now, Grace: 2 * time.Second}}
	for _, h := range hosts {
		if err := store.RegisterHost(t.Context(), &meta.Host{Host: hostapi.Host{ID: h, Driver: "testproc",
			Isolation: hostapi.IsolationContainer, Region: "eu", Capacity: hostapi.Capacity{Instances: 10}}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	w.dep = &meta.Deployment{Name: "app", Kind: meta.KindRootfs}
	if err := store.CreateDeployment(t.Context(), w.dep, "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sum := sha256.Sum256([]byte{byte(i)})
		v, err := store.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: w.dep.ID, Activate: i == 0, Actor: "test",
			Release: meta.Release{SHA256: hex.EncodeToString(sum[:]), Kind: meta.KindRootfs, SizeBytes: 1, URI: "x"},
			Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
		if err != nil {
			t.Fatal(err)
		}
		w.vers = append(w.vers, v)
	}
	return w
}

func (w *world) run() {
	w.t.Helper()
	if err := w.s.Once(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) instances() []meta.Instance {
	w.t.Helper()
	is, err := w.store.ListInstances(w.t.Context(), meta.InstanceFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	return is
}

// heartbeat reports every instance of host h in state (healthy unless
// its version is in sick).
func (w *world) heartbeat(h string, sick ...string) {
	w.t.Helper()
	var obs []hostapi.Observed
	for _, in := range w.instances() {
		if in.HostID != h {
			continue
		}
		st := hostapi.StateHealthy
		for _, v := range sick {
			if in.VersionID == v {
				st = hostapi.StateUnhealthy
			}
		}
		obs = append(obs, hostapi.Observed{ID: in.ID, State: st, Addr: "10.0.0.1:8080"})
	}
	if err := w.store.Heartbeat(w.t.Context(), h, hostapi.Capacity{}, obs); err != nil {
		w.t.Fatal(err)
	}
}

func count(is []meta.Instance, f func(meta.Instance) bool) int {
	n := 0
	for _, in := range is {
		if f(in) {
			n++
		}
	}
	return n
}

func (w *world) active() string {
	d, err := w.store.GetDeployment(w.t.Context(), w.dep.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return *d.ActiveVersionID
}

// TestLostHostReplaced: a host silent for HostLostAfter (10 s) is lost,
// its instances leave the healthy set at once and are placed elsewhere.
func TestLostHostReplaced(t *testing.T) {
	w := newWorld(t, "a", "b")
	ctx := t.Context()
	if _, err := w.store.SetReplicas(ctx, w.dep.ID, 2, "test"); err != nil {
		t.Fatal(err)
	}
	w.run()
	is := w.instances()
	if len(is) != 2 || is[0].HostID == is[1].HostID {
		t.Fatalf("placed %+v; want one on each host", is)
	}
	w.heartbeat("a")
	w.heartbeat("b")
	w.clock.Add(9 * time.Second)
	w.heartbeat("b")
	w.run()
	if n := count(w.instances(), func(in meta.Instance) bool { return in.State == hostapi.StateHealthy }); n != 2 {
		t.Fatalf("after 9 s: %d healthy", n)
	}
	w.clock.Add(2 * time.Second) // a: 11 s silent
	w.heartbeat("b")
	w.run()
	is = w.instances()
	if h, _ := w.store.GetHost(ctx, "a"); h.State != hostapi.HostLost {
		t.Fatalf("host a is %s", h.State)
	}
	if len(is) != 2 || count(is, func(in meta.Instance) bool { return in.HostID == "b" }) != 2 {
		t.Fatalf("instances %+v; want both on b", is)
	}
}

// TestRolloutSwitchesWhenHealthy: the target is placed beside the old
// version; the pointer moves once all are healthy; the old instances stay
// for the grace and then go.
func TestRolloutSwitchesWhenHealthy(t *testing.T) {
	w := newWorld(t, "a", "b")
	ctx := t.Context()
	w.store.SetReplicas(ctx, w.dep.ID, 2, "test")
	w.run()
	w.heartbeat("a")
	w.heartbeat("b")
	v1, v2 := w.vers[0].ID, w.vers[1].ID
	ro, err := w.store.StartRollout(ctx, meta.NewRollout{DeploymentID: w.dep.ID, VersionNumber: 2, Action: meta.ActionActivate,
		Deadline: w.clock.Now().Add(time.Minute), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.run()
	is := w.instances()
	if count(is, func(in meta.Instance) bool { return in.VersionID == v1 }) != 2 ||
		count(is, func(in meta.Instance) bool { return in.VersionID == v2 }) != 2 {
		t.Fatalf("during the rollout: %+v; want 2 of each version", is)
	}
	if w.active() != v1 {
		t.Fatal("switched before the target was healthy")
	}
	w.heartbeat("a")
	w.run()
	if got, _ := w.store.GetRollout(ctx, ro.ID); got.State != meta.RolloutRunning || got.Healthy != 1 || got.Wanted != 2 {
		t.Fatalf("rollout with 1 of 2 healthy: %+v", got)
	}
	w.heartbeat("b")
	w.run()
	if got, _ := w.store.GetRollout(ctx, ro.ID); got.State != meta.RolloutSucceeded || w.active() != v2 {
		t.Fatalf("rollout %+v, active %s", got, w.active())
	}
	if n := count(w.instances(), func(in meta.Instance) bool { return in.VersionID == v1 }); n != 2 {
		t.Fatalf("old instances right after the switch: %d, want 2 (grace)", n)
	}
	w.clock.Add(3 * time.Second)
	w.heartbeat("a")
	w.heartbeat("b")
	w.run()
	is = w.instances()
	if count(is, func(in meta.Instance) bool { return in.VersionID == v1 }) != 0 || len(is) != 2 {
		t.Fatalf("after the grace: %+v; want only v2", is)
	}
}

// TestRolloutFailsAtDeadline: a target that never gets healthy: the
// rollout fails at its deadline, the pointer stays, the new instances go.
func TestRolloutFailsAtDeadline(t *testing.T) {
	w := newWorld(t, "a")
	ctx := t.Context()
	w.store.SetReplicas(ctx, w.dep.ID, 1, "test")
	w.run()
	v1, v2 := w.vers[0].ID, w.vers[1].ID
	ro, err := w.store.StartRollout(ctx, meta.NewRollout{DeploymentID: w.dep.ID, VersionNumber: 2, Action: meta.ActionActivate,
		Deadline: w.clock.Now().Add(30 * time.Second), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.run()
	w.heartbeat("a", v2)
	w.clock.Add(29 * time.Second)
	w.heartbeat("a", v2)
	w.run()
	if got, _ := w.store.GetRollout(ctx, ro.ID); got.State != meta.RolloutRunning {
		t.Fatalf("before the deadline: %+v", got)
	}
	w.clock.Add(time.Second)
	w.run()
	got, _ := w.store.GetRollout(ctx, ro.ID)
	if got.State != meta.RolloutFailed || got.Reason != "0 of 1 instances healthy by the deadline" || w.active() != v1 {
		t.Fatalf("rollout %+v, active %s", got, w.active())
	}
	is := w.instances()
	if len(is) != 1 || is[0].VersionID != v1 {
		t.Fatalf("instances %+v; want the old one only", is)
	}
}

// TestDrain: a drained host's instance is replaced elsewhere first, and
// removed once the replacement is healthy.
func TestDrain(t *testing.T) {
	w := newWorld(t, "a", "b")
	ctx := t.Context()
	w.store.SetReplicas(ctx, w.dep.ID, 1, "test")
	w.run()
	old := w.instances()[0]
	w.heartbeat(old.HostID)
	if _, err := w.store.DrainHost(ctx, old.HostID, "test"); err != nil {
		t.Fatal(err)
	}
	w.run()
	is := w.instances()
	if len(is) != 2 {
		t.Fatalf("while draining: %+v; want the old one and its replacement", is)
	}
	other := "a"
	if old.HostID == "a" {
		other = "b"
	}
	w.heartbeat(other)
	w.run()
	is = w.instances()
	if len(is) != 1 || is[0].HostID != other {
		t.Fatalf("after the replacement is healthy: %+v", is)
	}
}

// TestLeaderOneAtATime: two schedulers on one store: one leads, the
// other leads once the first stops.
func TestLeaderOneAtATime(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(t.Context())
	first := &Scheduler{Store: w.store, Leader: w.store, Interval: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, release, err := w.store.TryLead(t.Context(), LeaderName)
		if err != nil {
			break // the first leads
		}
		release()
		if time.Now().After(deadline) {
			t.Fatal("the scheduler never led")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, release, err := w.store.TryLead(t.Context(), LeaderName)
	if err != nil {
		t.Fatalf("after the leader stopped: %v", err)
	}
	release()
}
