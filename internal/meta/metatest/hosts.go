package metatest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// hostTests are the conformance tests of meta.Hosts (RunAll).
var hostTests = []test{
	{"Hosts/Register", testHostRegister},
	{"Hosts/LostAndBack", testHostLost},
	{"Hosts/Replicas", testHostReplicas},
	{"Hosts/Placement", testHostPlacement},
	{"Hosts/Heartbeat", testHostHeartbeat},
	{"Hosts/ConcurrentPlacement", testHostConcurrentPlacement},
	{"Hosts/WatchInstances", testWatchInstances},
}

func hostStore(t *testing.T, s meta.Store) meta.Hosts { return capability[meta.Hosts](t, s) }

func registerHost(t *testing.T, hs meta.Hosts, id string) *meta.Host {
	t.Helper()
	h := &meta.Host{Host: hostapi.Host{ID: id, Hostname: id + ".local", Region: "eu", Driver: "runc",
		Isolation: hostapi.IsolationContainer, Capacity: hostapi.Capacity{CPU: 2, MemoryBytes: 4 << 30, Instances: 10}},
		AgentURL: "http://" + id + ":7070", AgentKey: "key-" + id, TokenID: "tok_a"}
	if err := hs.RegisterHost(t.Context(), h, "token:tok_a"); err != nil {
		t.Fatalf("RegisterHost(%s): %v", id, err)
	}
	return h
}

// rootfsVersion publishes an active rootfs version of a new deployment.
func rootfsVersion(t *testing.T, s meta.Store, name string) (*meta.Deployment, *meta.Version) {
	t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindRootfs}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatal(err)
	}
	rel := release("rootfs " + name)
	rel.Kind = meta.KindRootfs
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, SourceSHA256: sha("src"),
		Release: rel, Manifest: meta.Manifest{Files: 1, Entrypoint: "/app"}, Activate: true, Actor: "tester",
		Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	return d, v
}

func testHostRegister(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	if err := hs.RegisterHost(ctx, &meta.Host{}, "x"); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("RegisterHost without driver = %v, want ErrInvalid", err)
	}
	a := registerHost(t, hs, "")
	if len(a.ID) < 6 || a.ID[:5] != "host_" || a.State != hostapi.HostReady || a.LastSeen.IsZero() || a.CreatedAt.IsZero() {
		t.Fatalf("registered = %+v", a)
	}
	if a.AgentURL == "" || a.AgentKey != "key-" || a.Capacity.Instances != 10 || a.Capacity.MemoryBytes != 4<<30 {
		t.Fatalf("registered = %+v", a)
	}
	got, err := hs.GetHost(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetHost", got, a)
	if got.AgentKey != a.AgentKey {
		t.Errorf("agent key %q, want %q", got.AgentKey, a.AgentKey)
	}
	// Registering again (an agent restart) replaces the record, no event.
	n := len(events(t, s, meta.EventFilter{}))
	again := &meta.Host{Host: a.Host, AgentURL: "http://new:1", AgentKey: "k2"}
	again.Region = "us"
	if err := hs.RegisterHost(ctx, again, "token:tok_a"); err != nil {
		t.Fatal(err)
	}
	if again.Region != "us" || again.AgentKey != "k2" || !again.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("re-registered = %+v", again)
	}
	evs := events(t, s, meta.EventFilter{})
	if len(evs) != n || evs[n-1].Action != meta.ActionHostRegister {
		t.Errorf("events = %s, want one host.register", actions(evs))
	}
	registerHost(t, hs, "b")
	// A microVM host keeps its acceleration and guest kernel digest.
	vm := &meta.Host{Host: hostapi.Host{ID: "vm", Driver: "qemu-microvm", Isolation: hostapi.IsolationMicroVM,
		Accel: "tcg", KernelSHA256: sha("vmlinux")}}
	if err := hs.RegisterHost(ctx, vm, "token:tok_a"); err != nil {
		t.Fatal(err)
	}
	if got, err := hs.GetHost(ctx, "vm"); err != nil || got.Accel != "tcg" || got.KernelSHA256 != sha("vmlinux") || got.Isolation != hostapi.IsolationMicroVM {
		t.Fatalf("GetHost(vm) = %+v, %v", got, err)
	}
	hosts, err := hs.ListHosts(ctx)
	if err != nil || len(hosts) != 3 || hosts[0].ID != "b" || hosts[2].Accel != "tcg" {
		t.Fatalf("ListHosts = %+v, %v", hosts, err)
	}
	if _, err := hs.GetHost(ctx, "nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("GetHost(nope) = %v", err)
	}
	if err := hs.Heartbeat(ctx, "nope", hostapi.Capacity{}, nil); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("Heartbeat(nope) = %v", err)
	}
}

func testHostLost(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	a := registerHost(t, hs, "a")
	lost, err := hs.MarkLostHosts(ctx, a.LastSeen, "server")
	if err != nil || len(lost) != 0 {
		t.Fatalf("MarkLostHosts(at last_seen) = %v, %v; want none", lost, err)
	}
	lost, err = hs.MarkLostHosts(ctx, a.LastSeen.Add(time.Nanosecond), "server")
	if err != nil || len(lost) != 1 || lost[0] != "a" {
		t.Fatalf("MarkLostHosts = %v, %v", lost, err)
	}
	if h, _ := hs.GetHost(ctx, "a"); h.State != hostapi.HostLost {
		t.Fatalf("state %q, want lost", h.State)
	}
	if e := events(t, s, meta.EventFilter{}); e[len(e)-1].Action != meta.ActionHostLost {
		t.Fatalf("events = %s", actions(e))
	}
	if lost, _ := hs.MarkLostHosts(ctx, a.LastSeen.Add(time.Hour), "server"); len(lost) != 0 {
		t.Errorf("a lost host is lost again: %v", lost)
	}
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{Instances: 1}, nil); err != nil {
		t.Fatal(err)
	}
	h, _ := hs.GetHost(ctx, "a")
	if h.State != hostapi.HostReady || h.Used.Instances != 1 {
		t.Fatalf("after heartbeat: %+v", h)
	}
	if e := events(t, s, meta.EventFilter{}); e[len(e)-1].Action != meta.ActionHostRegister {
		t.Fatalf("events = %s, want host.register last", actions(e))
	}
}

func testHostReplicas(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	d, _ := rootfsVersion(t, s, "app")
	if n, err := hs.GetReplicas(ctx, d.ID); n != 0 || err != nil {
		t.Fatalf("GetReplicas = %d, %v", n, err)
	}
	if before, err := hs.SetReplicas(ctx, d.ID, 3, "tester"); before != 0 || err != nil {
		t.Fatalf("SetReplicas = %d, %v", before, err)
	}
	e := lastEvent(t, s, d.ID)
	if e.Action != meta.ActionDeploymentScale || string(e.Detail) != `{"after":3,"before":0}` {
		t.Errorf("event %s %s", e.Action, e.Detail)
	}
	n := len(events(t, s, meta.EventFilter{}))
	if before, err := hs.SetReplicas(ctx, d.ID, 3, "tester"); before != 3 || err != nil {
		t.Fatalf("SetReplicas again = %d, %v", before, err)
	}
	if len(events(t, s, meta.EventFilter{})) != n {
		t.Errorf("an unchanged count appended an event")
	}
	if n, _ := hs.GetReplicas(ctx, d.ID); n != 3 {
		t.Errorf("GetReplicas = %d", n)
	}
	if _, err := hs.SetReplicas(ctx, d.ID, -1, "tester"); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("SetReplicas(-1) = %v", err)
	}
	if _, err := hs.SetReplicas(ctx, "dep_nope", 1, "tester"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("SetReplicas(unknown) = %v", err)
	}
	ps, err := hs.PlacementState(ctx)
	if err != nil || ps.Replicas[d.ID] != 3 || len(ps.Replicas) != 1 {
		t.Fatalf("PlacementState = %+v, %v", ps, err)
	}
}

func testHostPlacement(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	d, v := rootfsVersion(t, s, "app")
	registerHost(t, hs, "a")
	ps, err := hs.PlacementState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Hosts) != 1 || len(ps.Instances) != 0 {
		t.Fatalf("state = %+v", ps)
	}
	create := []meta.NewInstance{{ID: "app-1", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"},
		{ID: "app-2", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}}
	if err := hs.ApplyPlacement(ctx, ps.Gen, create, nil, "server"); err != nil {
		t.Fatal(err)
	}
	if err := hs.ApplyPlacement(ctx, ps.Gen, nil, []string{"app-1"}, "server"); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("ApplyPlacement at a stale gen = %v, want ErrConflict", err)
	}
	is, err := hs.ListInstances(ctx, meta.InstanceFilter{DeploymentID: d.ID})
	if err != nil || len(is) != 2 {
		t.Fatalf("ListInstances = %+v, %v", is, err)
	}
	i := is[0]
	if i.ID != "app-1" || i.HostID != "a" || i.State != hostapi.StatePending || i.VersionNumber != 1 ||
		i.Release != v.ArtifactSHA256 || i.VersionID != v.ID || i.StartedAt != nil || i.ExitCode != nil {
		t.Errorf("instance = %+v", i)
	}
	if e := lastEvent(t, s, d.ID); e.Action != meta.ActionInstanceCreate || string(e.Detail) != `{"host_id":"a","instance_id":"app-2"}` {
		t.Errorf("event %s %s", e.Action, e.Detail)
	}
	ps2, _ := hs.PlacementState(ctx)
	if ps2.Gen == ps.Gen || len(ps2.Instances) != 2 {
		t.Fatalf("state after = %+v", ps2)
	}
	if err := hs.ApplyPlacement(ctx, ps2.Gen, []meta.NewInstance{{ID: "app-3", DeploymentID: d.ID, VersionID: v.ID, HostID: "nope"}},
		nil, "server"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("placement on an unknown host = %v", err)
	}
	if err := hs.ApplyPlacement(ctx, ps2.Gen, []meta.NewInstance{{ID: "app-1", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}},
		nil, "server"); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("a taken instance id = %v", err)
	}
	if err := hs.ApplyPlacement(ctx, ps2.Gen, nil, []string{"app-1", "gone"}, "server"); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.GetInstance(ctx, "app-1"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("removed instance: %v", err)
	}
	if e := lastEvent(t, s, d.ID); e.Action != meta.ActionInstanceRemove {
		t.Errorf("event %s", e.Action)
	}
	if is, _ := hs.ListInstances(ctx, meta.InstanceFilter{HostID: "a"}); len(is) != 1 || is[0].ID != "app-2" {
		t.Errorf("host a's instances = %+v", is)
	}
	if is, _ := hs.ListInstances(ctx, meta.InstanceFilter{HostID: "b"}); len(is) != 0 {
		t.Errorf("host b's instances = %+v", is)
	}
}

func testHostHeartbeat(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	d, v := rootfsVersion(t, s, "app")
	registerHost(t, hs, "a")
	registerHost(t, hs, "b")
	ps, _ := hs.PlacementState(ctx)
	if err := hs.ApplyPlacement(ctx, ps.Gen, []meta.NewInstance{{ID: "app-1", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}},
		nil, "server"); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	obs := []hostapi.Observed{{ID: "app-1", State: hostapi.StateHealthy, Addr: "10.0.0.2:8080", TreeDigest: "td",
		StartedAt: started, Restarts: 1}}
	// Another host's report of the instance is ignored.
	if err := hs.Heartbeat(ctx, "b", hostapi.Capacity{}, []hostapi.Observed{{ID: "app-1", State: hostapi.StateFailed}}); err != nil {
		t.Fatal(err)
	}
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{Instances: 1}, obs); err != nil {
		t.Fatal(err)
	}
	i, err := hs.GetInstance(ctx, "app-1")
	if err != nil {
		t.Fatal(err)
	}
	if i.State != hostapi.StateHealthy || i.Addr != "10.0.0.2:8080" || i.TreeDigest != "td" || i.Restarts != 1 ||
		i.StartedAt == nil || !i.StartedAt.Equal(started) || i.ExitCode != nil {
		t.Fatalf("instance = %+v", i)
	}
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{{ID: "app-1", State: "bogus"}}); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("unknown state = %v", err)
	}
	code := 2
	failed := hostapi.Observed{ID: "app-1", State: hostapi.StateFailed, ExitCode: &code, Restarts: 5,
		LastLog: []string{"panic: boom", "exit status 2"}}
	for range 2 {
		if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{failed, {ID: "unknown", State: "healthy"}}); err != nil {
			t.Fatal(err)
		}
	}
	i, _ = hs.GetInstance(ctx, "app-1")
	if i.State != hostapi.StateFailed || i.ExitCode == nil || *i.ExitCode != 2 || len(i.LastLog) != 2 || i.Restarts != 5 {
		t.Fatalf("failed instance = %+v", i)
	}
	var failedEvents int
	for _, e := range events(t, s, meta.EventFilter{DeploymentID: d.ID}) {
		if e.Action == meta.ActionInstanceFailed {
			failedEvents++
		}
	}
	if failedEvents != 1 {
		t.Errorf("%d instance.failed events, want 1", failedEvents)
	}
	// A later report without lines keeps the failed lines.
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{{ID: "app-1", State: hostapi.StateFailed, Restarts: 5}}); err != nil {
		t.Fatal(err)
	}
	if i, _ = hs.GetInstance(ctx, "app-1"); len(i.LastLog) != 2 {
		t.Errorf("last log = %q", i.LastLog)
	}
	// Healthy again: the lines go.
	if err := hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{{ID: "app-1", State: hostapi.StateHealthy, Restarts: 6}}); err != nil {
		t.Fatal(err)
	}
	if i, _ = hs.GetInstance(ctx, "app-1"); len(i.LastLog) != 0 || i.State != hostapi.StateHealthy {
		t.Errorf("healthy again: last log = %q, state %s", i.LastLog, i.State)
	}
	wantChain(t, s)
}

// testHostConcurrentPlacement: of placements computed from one snapshot,
// exactly one applies.
func testHostConcurrentPlacement(t *testing.T, s meta.Store) {
	hs, ctx := hostStore(t, s), t.Context()
	d, v := rootfsVersion(t, s, "app")
	registerHost(t, hs, "a")
	ps, _ := hs.PlacementState(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for n := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "app-" + string(rune('a'+n))
			errs[n] = hs.ApplyPlacement(ctx, ps.Gen, []meta.NewInstance{{ID: id, DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}}, nil, "server")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, meta.ErrConflict):
			t.Errorf("ApplyPlacement: %v", err)
		}
	}
	if is, _ := hs.ListInstances(ctx, meta.InstanceFilter{}); ok != 1 || len(is) != 1 {
		t.Errorf("%d placements applied, %d instances; want 1 and 1", ok, len(is))
	}
}
