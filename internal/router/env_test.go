package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// env is a router over a real SQLite store, kept fresh through the
// store's change feed (as the edge does), with one rootfs deployment on
// one host; instances are loopback HTTP servers made by the tests.
type env struct {
	t     testing.TB
	store *sqlite.Store
	rt    *Router
	dep   *meta.Deployment
	seq   atomic.Int64
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	rt := New(Config{Store: s})
	done := make(chan struct{})
	changes := s.Watch(ctx)
	go func() {
		defer close(done)
		go func() {
			for range changes {
				rt.Invalidate()
			}
		}()
		rt.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	e := &env{t: t, store: s, rt: rt}
	e.dep = &meta.Deployment{Name: "app", Kind: meta.KindRootfs}
	if err := s.CreateDeployment(ctx, e.dep, "test"); err != nil {
		t.Fatal(err)
	}
	h := &meta.Host{Host: hostapi.Host{ID: "h1", Hostname: "h1", Driver: "testproc",
		Capacity: hostapi.Capacity{CPU: 64, MemoryBytes: 64 << 30, Instances: 100}}}
	if err := s.RegisterHost(ctx, h, "test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// version publishes a new rootfs version (records only: the router never
// reads release bytes).
func (e *env) version(activate bool) *meta.Version {
	e.t.Helper()
	n := e.seq.Add(1)
	sha := fmt.Sprintf("%064x", n)
	v, err := e.store.CreateVersion(context.Background(), meta.NewVersion{DeploymentID: e.dep.ID,
		SourceSHA256: sha, Release: meta.Release{SHA256: sha, Kind: meta.KindRootfs, SizeBytes: 1, URI: "file:///x"},
		Manifest: meta.Manifest{Files: 1, Entrypoint: "/app"}, Activate: activate, Actor: "test",
		Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// instance places an instance of v and reports it in state at addr.
func (e *env) instance(v *meta.Version, state, addr string) string {
	e.t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("inst-%d", e.seq.Add(1))
	for {
		ps, err := e.store.PlacementState(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		err = e.store.ApplyPlacement(ctx, ps.Gen, []meta.NewInstance{{ID: id, DeploymentID: e.dep.ID, VersionID: v.ID, HostID: "h1"}}, nil, "test")
		if err == nil {
			break
		}
		if !errors.Is(err, meta.ErrConflict) {
			e.t.Fatal(err)
		}
	}
	e.report(id, state, addr)
	return id
}

// report is the host's heartbeat about instance id.
func (e *env) report(id, state, addr string) {
	e.t.Helper()
	if err := e.store.Heartbeat(context.Background(), "h1", hostapi.Capacity{},
		[]hostapi.Observed{{ID: id, State: state, Addr: addr}}); err != nil {
		e.t.Fatal(err)
	}
}

// waitPool waits until the router's table holds n healthy instances of v.
func (e *env) waitPool(v *meta.Version, n int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := 0
		if t := e.rt.table.Load(); t != nil && t.pools[v.ID] != nil {
			got = len(t.pools[v.ID].backends)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("router has %d healthy instances of %s after 2s, want %d", got, v.ID, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serve returns a server that proxies every request to version v, as the
// edge does (request ids from httplog).
func (e *env) serve(v *meta.Version) *httptest.Server {
	srv := httptest.NewServer(httplog.Handler("edge", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.rt.ServeVersion(w, r, e.dep.ID, v.ID, false)
	})))
	e.t.Cleanup(srv.Close)
	return srv
}

// startInstance starts a loopback instance answering with h and returns its
// address.
func startInstance(t testing.TB, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}
