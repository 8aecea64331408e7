package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/sched"
)

// agentLoop plays host h1's agent for the store: each pending instance
// gets a loopback server answering body and is reported starting, then
// healthy; it returns when ctx ends.
func (e *env) agentLoop(ctx context.Context, body string) {
	started := map[string]string{}
	for ctx.Err() == nil {
		is, err := e.store.ListInstances(ctx, meta.InstanceFilter{HostID: "h1"})
		if err != nil {
			return
		}
		var obs []hostapi.Observed
		for _, in := range is {
			addr, ok := started[in.ID]
			if !ok {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
				e.t.Cleanup(srv.Close)
				addr = srv.Listener.Addr().String()
				started[in.ID] = addr
				obs = append(obs, hostapi.Observed{ID: in.ID, State: hostapi.StateStarting})
				continue
			}
			obs = append(obs, hostapi.Observed{ID: in.ID, State: hostapi.StateHealthy, Addr: addr})
		}
		e.store.Heartbeat(ctx, "h1", hostapi.Capacity{}, obs)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWakePreview: a request for a preview version with no instance is
// held; the router records a wake (it places nothing itself); a real
// scheduler over the same store places an instance, the "agent" starts
// it, and the held request is answered by it. Later requests are
// reported (last_request moves), and the version is not woken twice.
func TestWakePreview(t *testing.T) {
	e := newEnv(t)
	e.version(true)
	old := e.version(false)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		(&sched.Scheduler{Store: e.store, Leader: e.store, Interval: time.Hour}).Run(ctx) // runs on changes only
	}()
	go func() { defer wg.Done(); e.agentLoop(ctx, "preview") }()
	srv := e.serve(old) // ServeVersion(…, active=false): a preview host
	start := time.Now()
	code, body, _ := get(t, srv.Client(), srv.URL)
	cold := time.Since(start)
	if code != 200 || body != "preview" {
		t.Fatalf("first request to the sleeping preview = %d %q", code, body)
	}
	t.Logf("cold start through a wake: %v", cold)
	ps, err := e.store.PlacementState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Wakes) != 1 || ps.Wakes[0].VersionID != old.ID {
		t.Fatalf("wakes %+v", ps.Wakes)
	}
	first := ps.Wakes[0]
	if n := e.rt.wakes.woken.Load(); n != 1 {
		t.Errorf("%d wakes sent, want 1", n)
	}
	for range 5 {
		if code, body, _ := get(t, srv.Client(), srv.URL); code != 200 || body != "preview" {
			t.Fatalf("warm request = %d %q", code, body)
		}
	}
	deadline := time.Now().Add(5 * TouchEvery)
	for {
		ps, _ := e.store.PlacementState(ctx)
		if len(ps.Wakes) == 1 && ps.Wakes[0].LastRequest.After(first.LastRequest) && ps.Wakes[0].WokenAt.Equal(first.WokenAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests not reported: %+v (first %+v)", ps.Wakes, first)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.rt.wakes.woken.Load(); n != 1 {
		t.Errorf("%d wakes sent after warm requests, want 1", n)
	}
}

// TestNoWakeWithoutAutostop: the active version of a deployment without
// autostop never sleeps: with no instance and no replicas the request is
// answered 503 at once, and nothing is woken or reported.
func TestNoWakeWithoutAutostop(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.rt.ServeVersion(w, r, e.dep.ID, v.ID, true)
	}))
	t.Cleanup(srv.Close)
	start := time.Now()
	if code, _, _ := get(t, srv.Client(), srv.URL); code != 503 || time.Since(start) > time.Second {
		t.Fatalf("= %d after %v, want 503 at once", code, time.Since(start))
	}
	e.rt.touch(context.Background())
	ps, _ := e.store.PlacementState(context.Background())
	if len(ps.Wakes) != 0 || e.rt.wakes.woken.Load() != 0 {
		t.Fatalf("wakes %+v, %d sent", ps.Wakes, e.rt.wakes.woken.Load())
	}
}

// TestWakeAutostop: the active version of an autostop deployment with no
// instance is woken by a request (its replicas placed by the scheduler)
// and answers it.
func TestWakeAutostop(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	if _, err := e.store.SetDesired(context.Background(), e.dep.ID, meta.Desired{Replicas: 2, Autostop: "5m"}, "test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	s := &sched.Scheduler{Store: e.store, Leader: e.store, Interval: 50 * time.Millisecond}
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // a few scheduler runs: asleep, nothing placed
	if is, _ := e.store.ListInstances(ctx, meta.InstanceFilter{}); len(is) != 0 {
		t.Fatalf("asleep: %d instances", len(is))
	}
	wg.Add(1)
	go func() { defer wg.Done(); e.agentLoop(ctx, "awake") }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.rt.ServeVersion(w, r, e.dep.ID, v.ID, true)
	}))
	t.Cleanup(srv.Close)
	if code, body, _ := get(t, srv.Client(), srv.URL); code != 200 || body != "awake" {
		t.Fatalf("first request = %d %q", code, body)
	}
	if is, _ := e.store.ListInstances(ctx, meta.InstanceFilter{}); len(is) != 2 {
		t.Errorf("%d instances after the wake, want the 2 replicas", len(is))
	}
}
