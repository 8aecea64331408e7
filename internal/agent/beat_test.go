package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/server"
)

// slowStart is the testproc runtime whose Start waits until release is
// closed, as a start that fetches a large release does.
type slowStart struct {
	*testproc.Runtime
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *slowStart) Start(ctx context.Context, d hostapi.Desired) (hostapi.Observed, error) {
	if strings.HasPrefix(d.ID, "slow") {
		s.once.Do(func() { close(s.started) })
		<-s.release
	}
	return s.Runtime.Start(ctx, d)
}

// TestHeartbeatsWhileStarting: a start that takes long does not silence
// the agent: its heartbeats go on (last_seen in the real API keeps moving)
// while Reconcile waits in the start.
func TestHeartbeatsWhileStarting(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Default()
	cfg.DataDir = filepath.Join(dir, "server")
	cfg.APIAddr, cfg.EdgeAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Roles = []string{server.RoleAPI}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := make(chan string, 1)
	cfg.Ready = func(a, _ string) { ready <- "http://" + a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	var api string
	select {
	case api = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10 s")
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(api, strings.TrimSpace(string(tok)))

	tp, err := testproc.New(filepath.Join(dir, "rt"))
	if err != nil {
		t.Fatal(err)
	}
	rt := &slowStart{Runtime: tp, started: make(chan struct{}), release: make(chan struct{})}
	a, err := New(Config{API: c, Runtime: rt, DataDir: filepath.Join(dir, "agent"), Heartbeat: 100 * time.Millisecond,
		Tick: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	adone := make(chan error, 1)
	go func() { adone <- a.Run(actx) }()
	t.Cleanup(func() {
		acancel()
		<-adone
		os, _ := tp.List(context.Background())
		for _, o := range os {
			tp.Stop(context.Background(), o.ID, time.Second)
		}
	})
	// Once the watch delivered the (empty) desired set, desire one
	// instance: Reconcile waits in its start.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		synced := a.synced
		a.mu.Unlock()
		if synced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no desired set from the API in 5 s")
		}
	}
	a.SetDesired([]hostapi.Desired{{ID: "slow-1", Cmd: []string{"/bin/sleep", "60"}, Port: 8080}})
	select {
	case <-rt.started:
	case <-time.After(5 * time.Second):
		t.Fatal("Reconcile did not start the instance in 5 s")
	}
	defer close(rt.release)
	blocked := time.Now()
	time.Sleep(time.Second)
	hs, err := c.ListHosts(ctx)
	if err != nil || len(hs) != 1 {
		t.Fatalf("hosts: %v %v", hs, err)
	}
	if seen := hs[0].LastSeen; seen.Before(blocked.Add(500 * time.Millisecond)) {
		t.Fatalf("last heartbeat at %v, %v before the start had waited 1 s; want heartbeats every 100 ms while it waits",
			seen, blocked.Add(time.Second).Sub(seen))
	}
}

// TestStartsDoNotWaitForEachOther: while one instance's start waits (its
// release still coming), another instance of the same Reconcile starts
// and runs.
func TestStartsDoNotWaitForEachOther(t *testing.T) {
	dir := t.TempDir()
	tp, err := testproc.New(filepath.Join(dir, "rt"))
	if err != nil {
		t.Fatal(err)
	}
	rt := &slowStart{Runtime: tp, started: make(chan struct{}), release: make(chan struct{})}
	a, err := New(Config{API: client.New("http://127.0.0.1:1", ""), Runtime: rt, DataDir: filepath.Join(dir, "agent"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os, _ := tp.List(context.Background())
		for _, o := range os {
			tp.Stop(context.Background(), o.ID, time.Second)
		}
	})
	a.SetDesired([]hostapi.Desired{{ID: "slow-1", Cmd: []string{"/bin/sleep", "60"}, Port: 8080},
		{ID: "fast-1", Cmd: []string{"/bin/sleep", "60"}, Port: 8080}})
	done := make(chan struct{})
	go func() { defer close(done); a.Reconcile(context.Background()) }()
	<-rt.started
	deadline := time.Now().Add(5 * time.Second)
	for {
		os, _ := tp.List(context.Background())
		if len(os) == 1 && os[0].ID == "fast-1" {
			break
		}
		if time.Now().After(deadline) {
			close(rt.release)
			<-done
			t.Fatalf("while slow-1's start waits, running: %+v; want fast-1", os)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(rt.release)
	<-done
	if n := len(a.Observed()); n != 2 {
		t.Fatalf("observed %+v; want both instances", a.Observed())
	}
}
