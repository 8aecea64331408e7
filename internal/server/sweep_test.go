package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepTempWhileRunning: a running server removes a temporary file that
// a killed blob write left once it is older than --tmp-max-age, without a
// restart, and keeps a younger one.
func TestSweepTempWhileRunning(t *testing.T) {
	cfg := Default()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.APIAddr, cfg.EdgeAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.TmpSweepInterval, cfg.TmpMaxAge = 20*time.Millisecond, time.Minute
	ready := make(chan struct{})
	cfg.Ready = func(string, string) { close(ready) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	tmp := filepath.Join(cfg.DataDir, "blobs", "tmp")
	killed, live := filepath.Join(tmp, "put-killed"), filepath.Join(tmp, "put-live")
	for _, p := range []string{killed, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute) // a crash two minutes ago
	if err := os.Chtimes(killed, old, old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(killed); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running server did not sweep a temporary file older than --tmp-max-age")
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a temporary file younger than --tmp-max-age was removed: %v", err)
	}
}
