package metatest

import (
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// schedTests are the conformance tests of meta.Scheduling and meta.Leader
// (RunAll).
var schedTests = []test{
	{"Sched/Desired", testDesired},
	{"Sched/DrainAndCache", testDrain},
	{"Sched/LostStopsInstances", testLostStops},
	{"Sched/RolloutSucceeds", testRolloutSucceeds},
	{"Sched/RolloutFails", testRolloutFails},
	{"Sched/RolloutSupersede", testRolloutSupersede},
	{"Sched/Leader", testLeader},
	{"Sched/Wakes", testWakes},
}

func schedStore(t *testing.T, s meta.Store) meta.Scheduling { return capability[meta.Scheduling](t, s) }

func testDesired(t *testing.T, s meta.Store) {
	ss, hs, ctx := schedStore(t, s), hostStore(t, s), t.Context()
	d, _ := rootfsVersion(t, s, "app")
	rec, err := ss.GetDesired(ctx, d.ID)
	if err != nil || rec.Seq != 0 || rec.Desired.Replicas != 0 {
		t.Fatalf("GetDesired (never set) = %+v, %v", rec, err)
	}
	// SetReplicas is a desired-state change too: a history row.
	if _, err := hs.SetReplicas(ctx, d.ID, 2, "tester"); err != nil {
		t.Fatal(err)
	}
	two := 2
	want := meta.Desired{Replicas: 3, CPU: 0.5, MemoryBytes: 256 << 20, MinHealthy: &two, Autostop: "15m",
		Isolation: hostapi.IsolationMicroVM, Regions: &meta.Regions{Count: map[string]int{"eu": 2, "us": 1}},
		HealthCheck: &meta.HealthCheck{Path: "/up", Interval: "1s", Timeout: "500ms"}}
	rec, err = ss.SetDesired(ctx, d.ID, want, "token:tok_x")
	if err != nil || rec.Seq != 2 || rec.Actor != "token:tok_x" || rec.CreatedAt.IsZero() {
		t.Fatalf("SetDesired = %+v, %v", rec, err)
	}
	e := lastEvent(t, s, d.ID)
	if e.Action != meta.ActionDesired || e.Actor != "token:tok_x" {
		t.Errorf("event %s by %s", e.Action, e.Actor)
	}
	got, err := ss.GetDesired(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetDesired", got, rec)
	if n, _ := hs.GetReplicas(ctx, d.ID); n != 3 {
		t.Errorf("replicas = %d, want 3 (placement reads them)", n)
	}
	// Unchanged: no row, no event.
	n := len(events(t, s, meta.EventFilter{}))
	if again, err := ss.SetDesired(ctx, d.ID, want, "tester"); err != nil || again.Seq != 2 {
		t.Fatalf("SetDesired unchanged = %+v, %v", again, err)
	}
	if len(events(t, s, meta.EventFilter{})) != n {
		t.Error("an unchanged desired state appended an event")
	}
	hist, err := ss.DesiredHistory(ctx, d.ID)
	if err != nil || len(hist) != 2 || hist[0].Seq != 2 || hist[1].Seq != 1 || hist[1].Desired.Replicas != 2 {
		t.Fatalf("DesiredHistory = %+v, %v", hist, err)
	}
	ps, err := hs.PlacementState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "PlacementState.Desired", ps.Desired[d.ID], want)
	for _, bad := range []meta.Desired{{Replicas: -1}, {CPU: -1}, {Isolation: "vm"}, {MinHealthy: new(-1)}} {
		if _, err := ss.SetDesired(ctx, d.ID, bad, "tester"); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("SetDesired(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ss.SetDesired(ctx, "dep_nope", want, "tester"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("SetDesired(unknown) = %v", err)
	}
	if _, err := ss.GetDesired(ctx, "dep_nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("GetDesired(unknown) = %v", err)
	}
}

func testDrain(t *testing.T, s meta.Store) {
	ss, hs, ctx := schedStore(t, s), hostStore(t, s), t.Context()
	a := registerHost(t, hs, "a")
	ps, _ := hs.PlacementState(ctx)
	h, err := ss.DrainHost(ctx, "a", "token:admin")
	if err != nil || h.State != hostapi.HostDraining {
		t.Fatalf("DrainHost = %+v, %v", h, err)
	}
	if e := events(t, s, meta.EventFilter{}); e[len(e)-1].Action != meta.ActionHostDrain {
		t.Errorf("events = %s", actions(e))
	}
	if ps2, _ := hs.PlacementState(ctx); ps2.Gen == ps.Gen {
		t.Error("draining did not move the placement generation")
	}
	// Heartbeats and a new registration keep it draining.
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, nil); err != nil {
		t.Fatal(err)
	}
	again := &meta.Host{Host: a.Host, AgentURL: a.AgentURL, AgentKey: "k2"}
	if err := hs.RegisterHost(ctx, again, "token:tok_a"); err != nil || again.State != hostapi.HostDraining {
		t.Fatalf("re-registered = %+v, %v", again, err)
	}
	if err := ss.ReportCache(ctx, "a", []string{sha("r2"), sha("r1")}); err != nil {
		t.Fatal(err)
	}
	got, _ := hs.GetHost(ctx, "a")
	if got.State != hostapi.HostDraining || len(got.Cached) != 2 || got.Cached[0] > got.Cached[1] {
		t.Errorf("host = %+v", got)
	}
	if err := ss.ReportCache(ctx, "nope", nil); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("ReportCache(unknown) = %v", err)
	}
	if _, err := ss.DrainHost(ctx, "nope", "x"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("DrainHost(unknown) = %v", err)
	}
	if _, err := hs.MarkLostHosts(ctx, got.LastSeen.Add(time.Second), "server"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.DrainHost(ctx, "a", "x"); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("DrainHost(lost) = %v, want ErrConflict", err)
	}
}

func testLostStops(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	d, v := rootfsVersion(t, s, "app")
	a := registerHost(t, hs, "a")
	ps, _ := hs.PlacementState(ctx)
	if err := hs.ApplyPlacement(ctx, ps.Gen, []meta.NewInstance{{ID: "app-1", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}}, nil, "s"); err != nil {
		t.Fatal(err)
	}
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{{ID: "app-1", State: hostapi.StateHealthy, Addr: "10.0.0.1:8080"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.MarkLostHosts(ctx, a.LastSeen.Add(time.Hour), "server"); err != nil {
		t.Fatal(err)
	}
	in, err := hs.GetInstance(ctx, "app-1")
	if err != nil || in.State != hostapi.StateStopped {
		t.Fatalf("instance of a lost host = %+v, %v; want stopped (out of the routable set)", in, err)
	}
}

// rolloutFixture: app with v1 active and v2 published, replicas 2.
func rolloutFixture(t *testing.T, s meta.Store) (*meta.Deployment, *meta.Version, *meta.Version) {
	t.Helper()
	d, v1 := rootfsVersion(t, s, "app")
	rel := release("rootfs app 2")
	rel.Kind = meta.KindRootfs
	v2, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, SourceSHA256: sha("src2"),
		Release: rel, Manifest: meta.Manifest{Files: 1, Entrypoint: "/app"}, Actor: "tester",
		Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostStore(t, s).SetReplicas(t.Context(), d.ID, 2, "tester"); err != nil {
		t.Fatal(err)
	}
	return d, v1, v2
}

func testRolloutSucceeds(t *testing.T, s meta.Store) {
	ss, hs, ctx := schedStore(t, s), hostStore(t, s), t.Context()
	d, v1, v2 := rolloutFixture(t, s)
	deadline := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := ss.StartRollout(ctx, meta.NewRollout{DeploymentID: d.ID, VersionNumber: 1, Action: meta.ActionActivate,
		Deadline: deadline, Actor: "tester"}); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("rollout to the active version = %v, want ErrConflict", err)
	}
	if _, err := ss.StartRollout(ctx, meta.NewRollout{DeploymentID: d.ID, VersionNumber: 9, Action: meta.ActionActivate,
		Deadline: deadline, Actor: "tester"}); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("rollout to v9 = %v, want ErrNotFound", err)
	}
	ro, err := ss.StartRollout(ctx, meta.NewRollout{DeploymentID: d.ID, VersionNumber: 2, Action: meta.ActionActivate,
		Deadline: deadline, Actor: "token:tok_d"})
	if err != nil {
		t.Fatal(err)
	}
	if ro.State != meta.RolloutRunning || ro.ToVersionID != v2.ID || ro.ToVersionNumber != 2 || ro.FromVersionID == nil ||
		*ro.FromVersionID != v1.ID || !ro.Deadline.Equal(deadline) || ro.FinishedAt != nil {
		t.Fatalf("rollout = %+v", ro)
	}
	if e := lastEvent(t, s, d.ID); e.Action != meta.ActionRolloutStart || e.VersionID != v2.ID {
		t.Errorf("event %s", e.Action)
	}
	ps, _ := hs.PlacementState(ctx)
	if len(ps.Rollouts) != 1 || ps.Rollouts[0].ID != ro.ID {
		t.Fatalf("PlacementState.Rollouts = %+v", ps.Rollouts)
	}
	if got, _ := s.GetDeployment(ctx, d.ID); *got.ActiveVersionID != v1.ID {
		t.Fatal("starting a rollout moved the pointer")
	}
	if err := ss.ProgressRollout(ctx, ro.ID, 1, 2, "sched"); err != nil {
		t.Fatal(err)
	}
	n := len(events(t, s, meta.EventFilter{}))
	if err := ss.ProgressRollout(ctx, ro.ID, 1, 2, "sched"); err != nil || len(events(t, s, meta.EventFilter{})) != n {
		t.Errorf("unchanged progress: %v, or an event", err)
	}
	done, err := ss.FinishRollout(ctx, ro.ID, true, "", "sched")
	if err != nil || done.State != meta.RolloutSucceeded || done.FinishedAt == nil || done.Healthy != 1 {
		t.Fatalf("FinishRollout = %+v, %v", done, err)
	}
	got, _ := s.GetDeployment(ctx, d.ID)
	if *got.ActiveVersionID != v2.ID {
		t.Fatal("a succeeded rollout left the pointer")
	}
	evs := events(t, s, meta.EventFilter{DeploymentID: d.ID})
	if a, b := evs[len(evs)-2], evs[len(evs)-1]; a.Action != meta.ActionActivate || a.Actor != "token:tok_d" || b.Action != meta.ActionRolloutSucceed {
		t.Errorf("events end with %s by %s, %s", a.Action, a.Actor, b.Action)
	}
	if _, err := ss.FinishRollout(ctx, ro.ID, false, "late", "sched"); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("finishing twice = %v, want ErrConflict", err)
	}
	if err := ss.ProgressRollout(ctx, ro.ID, 2, 2, "sched"); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("progress of a finished rollout = %v, want ErrConflict", err)
	}
	g, err := ss.GetRollout(ctx, ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetRollout", g, done)
	if _, err := ss.GetRollout(ctx, "ro_nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("GetRollout(unknown) = %v", err)
	}
	if ps, _ := hs.PlacementState(ctx); len(ps.Rollouts) != 0 {
		t.Errorf("a finished rollout is still running: %+v", ps.Rollouts)
	}
}

func testRolloutFails(t *testing.T, s meta.Store) {
	ss, ctx := schedStore(t, s), t.Context()
	d, v1, _ := rolloutFixture(t, s)
	ro, err := ss.StartRollout(ctx, meta.NewRollout{DeploymentID: d.ID, VersionNumber: 2, Action: meta.ActionActivate,
		Deadline: time.Now(), Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := ss.FinishRollout(ctx, ro.ID, false, "0 of 2 healthy by the deadline", "sched")
	if err != nil || done.State != meta.RolloutFailed || done.Reason != "0 of 2 healthy by the deadline" {
		t.Fatalf("FinishRollout(failed) = %+v, %v", done, err)
	}
	if got, _ := s.GetDeployment(ctx, d.ID); *got.ActiveVersionID != v1.ID {
		t.Fatal("a failed rollout moved the pointer")
	}
	if e := lastEvent(t, s, d.ID); e.Action != meta.ActionRolloutFail {
		t.Errorf("event %s", e.Action)
	}
}

func testRolloutSupersede(t *testing.T, s meta.Store) {
	ss, ctx := schedStore(t, s), t.Context()
	d, _, _ := rolloutFixture(t, s)
	nr := meta.NewRollout{DeploymentID: d.ID, VersionNumber: 2, Action: meta.ActionActivate, Deadline: time.Now(), Actor: "tester"}
	first, err := ss.StartRollout(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ss.StartRollout(ctx, nr)
	if err != nil || second.State != meta.RolloutRunning {
		t.Fatalf("second = %+v, %v", second, err)
	}
	// Back to the active version: the running one is superseded, and the
	// new one has nothing to do.
	nr.VersionNumber, nr.Action = 1, meta.ActionRollback
	third, err := ss.StartRollout(ctx, nr)
	if err != nil || third.State != meta.RolloutSucceeded || third.FinishedAt == nil {
		t.Fatalf("third = %+v, %v", third, err)
	}
	all, err := ss.ListRollouts(ctx, d.ID, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListRollouts = %+v, %v", all, err)
	}
	if all[0].ID != third.ID || all[1].ID != second.ID || all[2].ID != first.ID {
		t.Errorf("order %s %s %s, want newest first", all[0].ID, all[1].ID, all[2].ID)
	}
	if all[1].State != meta.RolloutSuperseded || all[2].State != meta.RolloutSuperseded {
		t.Errorf("states %s %s, want superseded", all[1].State, all[2].State)
	}
	if two, _ := ss.ListRollouts(ctx, d.ID, 2); len(two) != 2 {
		t.Errorf("ListRollouts(limit 2) = %d", len(two))
	}
}

func testLeader(t *testing.T, s meta.Store) {
	l, ctx := capability[meta.Leader](t, s), t.Context()
	lost, release, err := l.TryLead(ctx, "sched")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.TryLead(ctx, "sched"); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("second TryLead = %v, want ErrConflict", err)
	}
	_, r2, err := l.TryLead(ctx, "other")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	r2()
	select {
	case <-lost:
		t.Fatal("lost while held")
	default:
	}
	release()
	release() // twice is fine
	_, r3, err := l.TryLead(ctx, "sched")
	if err != nil {
		t.Fatalf("TryLead after release = %v", err)
	}
	r3()
}
