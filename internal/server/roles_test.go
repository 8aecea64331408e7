package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestSuperviseOrder: roles start in order and stop in reverse order, each
// after the later ones have returned; a failing role stops the others and
// its error (named) is the result.
func TestSuperviseOrder(t *testing.T) {
	var mu sync.Mutex
	var stopped []string
	wait := func(name string) role {
		return role{name, func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // a later role still stopping would show
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return ctx.Err()
		}}
	}
	boom := errors.New("boom")
	for _, c := range []struct {
		name  string
		fail  time.Duration // <0: no failure, the context ends
		want  string
		order string
	}{
		{"context ends", -1, "", "c,b,a"},
		{"fails at start", 0, "bad: boom", "c,b,a"},
		{"fails later", 50 * time.Millisecond, "bad: boom", "c,b,a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stopped = nil
			roles := []role{wait("a"), wait("b"), wait("c")}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if c.fail >= 0 {
				roles = append(roles[:1], append([]role{{"bad", func(ctx context.Context) error {
					time.Sleep(c.fail)
					return boom
				}}}, roles[1:]...)...)
			} else {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			err := supervise(ctx, roles, quiet(), nil)
			if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want || !errors.Is(err, boom)) {
				t.Fatalf("supervise = %v, want %q", err, c.want)
			}
			if got := strings.Join(stopped, ","); got != c.order {
				t.Errorf("stopped %s, want %s", got, c.order)
			}
		})
	}
}

// TestRunLeavesNothing: a start/stop cycle with every role on (api, edge,
// gc with its loop, metrics listener) leaves no goroutine behind, no
// listener bound and the database closed; a role that fails, at start or
// later, stops the process with its error and leaves the same nothing.
func TestRunLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		fail time.Duration // <0: no failing role
	}{
		{"clean stop", -1},
		{"role fails at start", 0},
		{"role fails later", 200 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			cfg := Default()
			cfg.DataDir = t.TempDir()
			cfg.Logger = quiet()
			cfg.APIAddr, cfg.EdgeAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", freeAddr(t)
			cfg.GCInterval, cfg.TmpSweepInterval = 50*time.Millisecond, 50*time.Millisecond
			// Every role on: two regions run the replicator; the TLS
			// listener runs the certificate manager (its ACME directory
			// is never reached: no domain asks for a certificate).
			cfg.Blobs = "one=file://" + t.TempDir() + ",two=file://" + t.TempDir()
			cfg.EdgeTLSAddr, cfg.ACMECA = "127.0.0.1:0", "https://127.0.0.1:1/directory"
			if c.fail >= 0 {
				cfg.testRoles = []role{{"doomed", func(ctx context.Context) error {
					time.Sleep(c.fail)
					return errors.New("doomed failed")
				}}}
			}
			var api, edge string
			ctx, cancel := context.WithCancel(t.Context())
			cfg.Ready = func(a, e string) {
				api, edge = a, e
				if c.fail < 0 {
					time.AfterFunc(300*time.Millisecond, cancel) // the loops run a few times
				}
			}
			err := Run(ctx, cfg)
			cancel()
			if c.fail < 0 && err != nil || c.fail >= 0 && (err == nil || !strings.Contains(err.Error(), "doomed")) {
				t.Fatalf("Run = %v", err)
			}
			for _, addr := range []string{api, edge, cfg.MetricsAddr} {
				if conn, err := net.Dial("tcp", addr); err == nil {
					conn.Close()
					t.Errorf("%s still answers after Run returned", addr)
				}
			}
			// The last SQLite connection to close removes the WAL.
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "cairn.db-wal")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the database is still open: its WAL is there (%v)", err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after Run, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
