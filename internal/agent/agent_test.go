package agent

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/hostapi"
)

var (
	appOnce sync.Once
	appPath string
	appErr  error
)

// hostApp builds internal/e2e/testdata/hostapp once.
func hostApp(t *testing.T) string {
	t.Helper()
	appOnce.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		dir, err := os.MkdirTemp("", "cairn-hostapp-")
		if err != nil {
			appErr = err
			return
		}
		appPath = filepath.Join(dir, "hostapp")
		c := exec.Command("go", "build", "-o", appPath, "./internal/e2e/testdata/hostapp")
		c.Dir = filepath.Join(filepath.Dir(self), "..", "..")
		if out, err := c.CombinedOutput(); err != nil {
			appErr = err
			t.Logf("%s", out)
		}
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appPath
}

func newAgent(t *testing.T, dir string, clock *fakeclock.Clock) (*Agent, *testproc.Runtime) {
	t.Helper()
	rt, err := testproc.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{API: client.New("http://127.0.0.1:1", ""), Runtime: rt, DataDir: filepath.Join(dir, "agent"),
		MaxCrashes: 3, BackoffBase: time.Second, BackoffMax: 4 * time.Second, LastLines: 5, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os, _ := rt.List(t.Context())
		for _, o := range os {
			rt.Stop(t.Context(), o.ID, time.Second)
		}
	})
	return a, rt
}

func state(a *Agent, id string) hostapi.Observed {
	for _, o := range a.Observed() {
		if o.ID == id {
			return o
		}
	}
	return hostapi.Observed{}
}

// until reconciles until cond holds (5 s).
func until(t *testing.T, a *Agent, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		a.Reconcile(t.Context())
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not after 5 s; observed %+v", what, a.Observed())
}

// TestCrashBackoffFailed: an instance that exits is restarted only after
// its backoff (1 s, then 2 s on the fake clock), and after MaxCrashes
// exits it is failed with its last log lines.
func TestCrashBackoffFailed(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	a, _ := newAgent(t, t.TempDir(), clock)
	d := hostapi.Desired{ID: "crash-1", Cmd: []string{hostApp(t)}, Env: map[string]string{"CRASH_AT_START": "1"}, Port: 8080}
	a.SetDesired([]hostapi.Desired{d})
	until(t, a, "first exit", func() bool { return state(a, "crash-1").State == hostapi.StateStopped })
	for i := range 10 { // the clock stands still: no restart
		a.Reconcile(t.Context())
		time.Sleep(10 * time.Millisecond)
		if o := state(a, "crash-1"); o.Restarts != 0 || o.State != hostapi.StateStopped {
			t.Fatalf("tick %d: %+v, want stopped without restart before the backoff", i, o)
		}
	}
	clock.Add(999 * time.Millisecond)
	a.Reconcile(t.Context())
	if o := state(a, "crash-1"); o.Restarts != 0 {
		t.Fatalf("restarted before 1 s: %+v", o)
	}
	clock.Add(time.Millisecond)
	until(t, a, "restart 1", func() bool { return state(a, "crash-1").Restarts == 1 })
	until(t, a, "second exit", func() bool { return state(a, "crash-1").State == hostapi.StateStopped })
	clock.Add(time.Second) // the second backoff is 2 s
	a.Reconcile(t.Context())
	if o := state(a, "crash-1"); o.Restarts != 1 {
		t.Fatalf("restarted 1 s after the second exit: %+v", o)
	}
	clock.Add(time.Second)
	until(t, a, "restart 2", func() bool { return state(a, "crash-1").Restarts == 2 })
	until(t, a, "failed", func() bool { return state(a, "crash-1").State == hostapi.StateFailed })
	o := state(a, "crash-1")
	if o.ExitCode == nil || *o.ExitCode != 3 || len(o.LastLog) == 0 || o.LastLog[len(o.LastLog)-1] != "crashing at start" {
		t.Fatalf("failed = %+v", o)
	}
	clock.Add(time.Hour)
	for range 5 {
		a.Reconcile(t.Context())
	}
	if o := state(a, "crash-1"); o.State != hostapi.StateFailed || o.Restarts != 2 {
		t.Fatalf("a failed instance moved: %+v", o)
	}
}

// TestAdopt: a new agent over the same runtime directory adopts the
// running instance: same process, no restart. An instance no longer
// desired is stopped.
func TestAdopt(t *testing.T) {
	clock := fakeclock.New(time.Now())
	dir := t.TempDir()
	a, _ := newAgent(t, dir, clock)
	d := hostapi.Desired{ID: "web-1", Cmd: []string{hostApp(t)}, Port: 8080, HealthPath: "/healthz"}
	a.SetDesired([]hostapi.Desired{d})
	until(t, a, "healthy", func() bool { return state(a, "web-1").State == hostapi.StateHealthy })
	addr := state(a, "web-1").Addr
	pid := get(t, "http://"+addr+"/")

	b, _ := newAgent(t, dir, clock) // the agent restarted
	for range 3 {                   // before its first desired set, it touches nothing
		b.Reconcile(t.Context())
	}
	if got := get(t, "http://"+addr+"/"); got != pid {
		t.Fatalf("before the desired set: %q, want %q", got, pid)
	}
	b.SetDesired([]hostapi.Desired{d})
	until(t, b, "adopted healthy", func() bool { return state(b, "web-1").State == hostapi.StateHealthy })
	if o := state(b, "web-1"); o.Addr != addr || o.Restarts != 0 || get(t, "http://"+addr+"/") != pid {
		t.Fatalf("adopted %+v, pid %q; want the same process at %s (%s)", o, get(t, "http://"+addr+"/"), addr, pid)
	}
	b.SetDesired(nil)
	until(t, b, "stopped", func() bool { return len(b.Observed()) == 0 })
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Fatal("an instance no longer desired still answers")
	}
}

// TestAdoptKeepsCounts: an agent that restarts keeps each instance's
// restart count (instances.json in its data dir), and a failed instance
// stays failed with its last lines instead of running again.
func TestAdoptKeepsCounts(t *testing.T) {
	clock := fakeclock.New(time.Now())
	dir := t.TempDir()
	a, _ := newAgent(t, dir, clock)
	web := hostapi.Desired{ID: "web-1", Cmd: []string{hostApp(t)}, Port: 8080, HealthPath: "/healthz"}
	bad := hostapi.Desired{ID: "bad-1", Cmd: []string{hostApp(t)}, Env: map[string]string{"CRASH_AT_START": "1"}, Port: 8081}
	a.SetDesired([]hostapi.Desired{web, bad})
	until(t, a, "healthy", func() bool { return state(a, "web-1").State == hostapi.StateHealthy })
	addr := state(a, "web-1").Addr
	http.Get("http://" + addr + "/crash")
	until(t, a, "crashed", func() bool { return state(a, "web-1").State == hostapi.StateStopped })
	clock.Add(time.Second)
	until(t, a, "restarted healthy", func() bool {
		o := state(a, "web-1")
		return o.Restarts == 1 && o.State == hostapi.StateHealthy
	})
	for range 3 {
		until(t, a, "bad exits", func() bool { return state(a, "bad-1").State != hostapi.StateStarting })
		clock.Add(4 * time.Second)
	}
	until(t, a, "bad failed", func() bool { return state(a, "bad-1").State == hostapi.StateFailed })
	addr = state(a, "web-1").Addr
	pid := get(t, "http://"+addr+"/")

	b, _ := newAgent(t, dir, clock) // the agent restarted
	b.SetDesired([]hostapi.Desired{web, bad})
	until(t, b, "adopted healthy", func() bool { return state(b, "web-1").State == hostapi.StateHealthy })
	for range 3 {
		clock.Add(time.Hour)
		b.Reconcile(t.Context())
	}
	if o := state(b, "web-1"); o.Restarts != 1 || get(t, "http://"+addr+"/") != pid {
		t.Errorf("adopted %+v; want restarts 1 and the same process %s", o, pid)
	}
	if o := state(b, "bad-1"); o.State != hostapi.StateFailed || o.Restarts != 2 || len(o.LastLog) == 0 || o.ExitCode == nil || *o.ExitCode != 3 {
		t.Errorf("failed instance after the agent restart: %+v; want failed, restarts 2, its last lines", o)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// TestHealthInterval: once healthy, an instance is checked again only
// every HealthInterval (the fake clock); before that, every tick.
func TestHealthInterval(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	a, rt := newAgent(t, t.TempDir(), clock)
	d := hostapi.Desired{ID: "probe-1", Cmd: []string{hostApp(t)}, Port: 8080, HealthPath: "/probe",
		HealthInterval: "10s", HealthTimeout: "500ms"}
	a.SetDesired([]hostapi.Desired{d})
	until(t, a, "healthy", func() bool { return state(a, "probe-1").State == hostapi.StateHealthy })
	probes := func() int {
		var b strings.Builder
		rt.Logs(t.Context(), "probe-1", false, &b)
		return strings.Count(b.String(), "request /probe")
	}
	n := probes()
	for range 5 {
		a.Reconcile(t.Context())
	}
	if got := probes(); got != n {
		t.Fatalf("%d probes within the interval, want none", got-n)
	}
	clock.Add(10 * time.Second)
	a.Reconcile(t.Context())
	if got := probes(); got != n+1 {
		t.Fatalf("%d probes after the interval, want 1", got-n)
	}
	if o := state(a, "probe-1"); o.State != hostapi.StateHealthy {
		t.Fatalf("state %s", o.State)
	}
}
