package sqlite_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// TestWatchOtherProcess: a commit made through another Store on the same
// file (as another process would) reaches this Store's watchers within the
// poll interval; without the data_version poller nothing arrives.
func TestWatchOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	writer := open(t, path)
	edge := open(t, path)

	ch := edge.Watch(t.Context())
	time.Sleep(2 * sqlite.PollInterval) // the poller has read its first data_version
	drain(ch)

	start := time.Now()
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := writer.CreateDeployment(t.Context(), d, "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		if took := time.Since(start); took > 4*sqlite.PollInterval {
			t.Errorf("announced after %v, want within about %v", took, sqlite.PollInterval)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a commit by another store on the same file was never announced")
	}
}

// TestWatchPollerStops: the poller ends with the last watcher and with
// Close, so no goroutine outlives the Store.
func TestWatchPollerStops(t *testing.T) {
	before := runtime.NumGoroutine()
	s := open(t, filepath.Join(t.TempDir(), "meta.db"))
	ctx, cancel := context.WithCancel(t.Context())
	for range 3 {
		s.Watch(ctx)
	}
	s.Watch(t.Context()) // still open at Close
	time.Sleep(2 * sqlite.PollInterval)
	cancel()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before Open", n, before)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
