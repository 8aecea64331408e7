package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/server"
)

// realServer runs an in-process server that collects at once (grace 0,
// retention 0 by default) and returns its API URL and data dir.
func realServer(t *testing.T) (api, data string) {
	t.Helper()
	cfg := server.Default()
	cfg.DataDir = t.TempDir()
	cfg.APIAddr, cfg.EdgeAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.GCGrace, cfg.GCDrain, cfg.GCInterval, cfg.RetentionDays = 0, 0, 0, 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := make(chan string, 1)
	cfg.Ready = func(a, _ string) { ready <- "http://" + a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case api = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return api, cfg.DataDir
}

func TestGCAndAuditCommands(t *testing.T) {
	api, data := realServer(t)
	run := func(args ...string) string {
		t.Helper()
		out, stderr, code := cli(t, nil, append(args, "--api", api, "--data", data)...)
		if code != 0 {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	site := siteDir(t)
	run("publish", site, "--deployment", "demo", "--domain", "www.demo.test")
	time.Sleep(5 * time.Millisecond)
	beforeV2 := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>two</h1>"), 0o644)
	run("publish", site, "--deployment", "demo")

	out := run("gc", "--dry-run")
	if !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "would collect 1 release(s) of 1 version(s)") {
		t.Errorf("gc --dry-run:\n%s", out)
	}
	var rep gc.Report
	if err := json.Unmarshal([]byte(run("gc", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.DryRun || rep.Totals.ReleasesCollected != 1 || rep.Totals.KeptBy[meta.RootActive] != 1 {
		t.Errorf("gc --json: %+v", rep.Totals)
	}
	if out := run("gc"); !strings.Contains(out, "collected 0 release(s)") || !strings.Contains(out, "kept 1 release(s) (active 1)") {
		t.Errorf("second gc:\n%s", out)
	}

	out = run("audit", "www.demo.test", "--at", beforeV2)
	if !strings.Contains(out, "demo v1 (following the active version") || !strings.Contains(out, "collected") {
		t.Errorf("audit before v2:\n%s", out)
	}
	var h meta.History
	if err := json.Unmarshal([]byte(run("audit", "demo", "--json")), &h); err != nil {
		t.Fatal(err)
	}
	if h.Version == nil || h.Version.VersionNumber != 2 || h.Release.CollectedAt != nil {
		t.Errorf("audit demo now: %+v", h)
	}
	if _, stderr, code := cli(t, nil, "audit", "demo", "--at", "yesterday", "--api", api); code != 1 || !strings.Contains(stderr, "--at") {
		t.Errorf("bad --at: exit %d: %s", code, stderr)
	}
}
