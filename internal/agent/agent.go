// Package agent is `cairn agent`: the loop on each compute host that
// registers with the API, heartbeats, long-polls its desired instances and
// drives a hostapi.Runtime to match them, restarting crashes with backoff.
// It speaks only HTTP to the API, with an agent-scoped token; it never
// opens the metadata store. See docs/design.md, "Hosts and instances".
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/hostapi"
)

// Config is what an agent needs.
type Config struct {
	API      *client.Client
	Runtime  hostapi.Runtime
	DataDir  string // keeps the host id across restarts
	Hostname string
	Region   string
	Capacity hostapi.Capacity
	// Listen is where the agent serves instance logs to the API
	// ("127.0.0.1:0" if empty); Advertise, if set, is the URL the API
	// uses for it (default: http:// and the listener's address).
	Listen    string
	Advertise string
	// Heartbeat is how often the agent reports (default 2 s); Tick how
	// often it reconciles (default 250 ms).
	Heartbeat, Tick time.Duration
	// MaxCrashes: an instance that exits this many times in a row is
	// failed (default 5). Backoff doubles from BackoffBase (1 s) to
	// BackoffMax (30 s) between restarts.
	MaxCrashes              int
	BackoffBase, BackoffMax time.Duration
	// LastLines is how many log lines a failed instance keeps (default 20).
	LastLines int
	// Now is the clock of backoff decisions (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Agent is one running agent.
type Agent struct {
	cfg    Config
	hostID string
	key    string

	mu      sync.Mutex
	desired map[string]hostapi.Desired
	synced  bool // a desired set arrived: until then nothing is started or stopped
	track   map[string]*tracked
	last    []hostapi.Observed
	saved   []byte // instances.json as last written

	beatNow chan struct{} // Run asks beat for a heartbeat now
}

// tracked is what the agent remembers of an instance between ticks.
type tracked struct {
	crashes   int
	restarts  int
	retryAt   time.Time // a crashed instance starts again at this time
	waiting   bool      // a restart is scheduled
	failed    bool
	lastLog   []string
	exitCode  *int
	healthy   bool
	startedAt time.Time
	checkedAt time.Time // the last health check (of a healthy-once instance)
	lastOK    bool      // its answer
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Agent, error) {
	if cfg.API == nil || cfg.Runtime == nil {
		return nil, errors.New("agent: an API client and a runtime are needed")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Heartbeat, 2*time.Second)
	def(&cfg.Tick, 250*time.Millisecond)
	def(&cfg.BackoffBase, time.Second)
	def(&cfg.BackoffMax, 30*time.Second)
	if cfg.MaxCrashes <= 0 {
		cfg.MaxCrashes = 5
	}
	if cfg.LastLines <= 0 {
		cfg.LastLines = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b := make([]byte, 24)
	rand.Read(b)
	a := &Agent{cfg: cfg, key: hex.EncodeToString(b), desired: map[string]hostapi.Desired{}, track: map[string]*tracked{}, beatNow: make(chan struct{}, 1)}
	a.loadTracked()
	return a, nil
}

// HostID is the host's id once registered.
func (a *Agent) HostID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hostID
}

// Run registers and works until ctx ends. Instances keep running when it
// returns: a new agent over the same data dir adopts them.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: --listen: %w", err)
	}
	srv := &http.Server{Handler: a.logsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	adv := a.cfg.Advertise
	if adv == "" {
		adv = "http://" + ln.Addr().String()
	}
	if err := a.register(ctx, adv); err != nil {
		return err
	}
	a.cfg.Log.Info("agent registered", "host", a.HostID(), "driver", a.cfg.Runtime.Driver(), "logs", adv)
	go a.watch(ctx)
	// Builds run in containers (the runc driver), not in microVMs.
	if b, ok := a.cfg.Runtime.(hostapi.Builder); ok && a.cfg.Runtime.Isolation() == hostapi.IsolationContainer {
		go a.builds(ctx, b)
	}
	// The heartbeat has a loop of its own: a reconcile that takes long (a
	// microVM's start or power-down, a stop's grace) must not make the
	// host look lost. It reports the last reconciled view.
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		a.beat(ctx, adv)
	}()
	defer func() { <-beats }()
	tick := time.NewTicker(a.cfg.Tick)
	defer tick.Stop()
	var reported string // the states and addresses last sent to beat
	for {
		a.Reconcile(ctx)
		// A change of an instance's state or address is reported at once
		// (a new instance healthy is routable a heartbeat sooner: cold
		// starts and rollouts), the rest every Heartbeat.
		if now := a.reportKey(); now != reported {
			reported = now
			select {
			case a.beatNow <- struct{}{}:
			default: // a beat is already due
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// reportKey names what routing depends on in the last observation: each
// instance's id, state and address.
func (a *Agent) reportKey() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for _, o := range a.last {
		b.WriteString(o.ID + " " + o.State + " " + o.Addr + "\n")
	}
	return b.String()
}

// beat sends a heartbeat every cfg.Heartbeat, and at once when Run
// signals a change of an instance's state or address, until ctx ends, with
// the last reconciled view; an API that forgot the host gets it registered
// again. It runs apart from reconciling: a start that takes long (a large
// release to fetch and unpack, a microVM's boot under TCG) must not silence
// the host, or the scheduler declares it lost and replaces its instances.
func (a *Agent) beat(ctx context.Context, adv string) {
	tick := time.NewTicker(a.cfg.Heartbeat)
	defer tick.Stop()
	for {
		if err := a.heartbeat(ctx); err != nil && ctx.Err() == nil {
			a.cfg.Log.Warn("heartbeat", "err", err)
			if isNotFound(err) { // the API forgot us: register again
				_ = a.register(ctx, adv)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.beatNow:
		}
	}
}

func isNotFound(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (a *Agent) idFile() string { return filepath.Join(a.cfg.DataDir, "host-id") }

// register registers the host under the id kept in the data dir, if any.
func (a *Agent) register(ctx context.Context, adv string) error {
	id := ""
	if b, err := os.ReadFile(a.idFile()); err == nil {
		id = strings.TrimSpace(string(b))
	}
	reg := api.Registration{ID: id, Hostname: a.cfg.Hostname, Region: a.cfg.Region,
		Driver: a.cfg.Runtime.Driver(), Isolation: a.cfg.Runtime.Isolation(), Capacity: a.cfg.Capacity,
		AgentURL: adv, AgentKey: a.key}
	if vm, ok := a.cfg.Runtime.(hostapi.MicroVMRuntime); ok {
		reg.Accel, reg.KernelSHA256 = vm.Accel(), vm.KernelSHA256()
	}
	for {
		host, err := a.cfg.API.RegisterHost(ctx, reg)
		if err == nil {
			a.mu.Lock()
			a.hostID = host.ID
			a.mu.Unlock()
			if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
				return err
			}
			return os.WriteFile(a.idFile(), []byte(host.ID+"\n"), 0o600)
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
			return fmt.Errorf("agent: registering: %w", err) // a bad token or request does not heal
		}
		a.cfg.Log.Warn("registering; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// watch long-polls the desired set.
func (a *Agent) watch(ctx context.Context) {
	gen := ""
	for ctx.Err() == nil {
		set, err := a.cfg.API.Desired(ctx, a.HostID(), gen, 30*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				a.cfg.Log.Warn("desired instances", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		gen = set.Gen
		a.SetDesired(set.Instances)
	}
}

// SetDesired replaces the desired set (the watch does it; tests may).
func (a *Agent) SetDesired(ds []hostapi.Desired) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.desired, a.synced = map[string]hostapi.Desired{}, true
	for _, d := range ds {
		a.desired[d.ID] = d
	}
}

func (a *Agent) heartbeat(ctx context.Context) error {
	a.mu.Lock()
	obs := append([]hostapi.Observed{}, a.last...)
	limits := map[string]hostapi.Limits{}
	for id, d := range a.desired {
		limits[id] = d.Limits
	}
	a.mu.Unlock()
	used := hostapi.Capacity{}
	for _, o := range obs {
		if o.State != hostapi.StateStopped && o.State != hostapi.StateFailed {
			used.Instances++
			used.CPU += limits[o.ID].CPU
			used.MemoryBytes += limits[o.ID].MemoryBytes
		}
	}
	hb := api.Heartbeat{Used: used, Instances: obs}
	if cr, ok := a.cfg.Runtime.(hostapi.CacheReporter); ok {
		hb.Cached = cr.CachedReleases()
	}
	return a.cfg.API.Heartbeat(ctx, a.HostID(), hb)
}

// Observed is the last reconciled view of the instances.
func (a *Agent) Observed() []hostapi.Observed {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]hostapi.Observed{}, a.last...)
}

// Reconcile makes the runtime match the desired set once: start what is
// missing, restart crashes after their backoff (failed after MaxCrashes),
// stop what is no longer desired, check health. Running instances found
// by the runtime (an earlier agent's) are adopted as they are.
func (a *Agent) Reconcile(ctx context.Context) {
	a.mu.Lock()
	synced := a.synced
	a.mu.Unlock()
	if !synced { // a restarted agent must not stop what it will adopt
		return
	}
	list, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		a.cfg.Log.Warn("listing instances", "err", err)
		return
	}
	a.mu.Lock()
	desired := make(map[string]hostapi.Desired, len(a.desired))
	for k, v := range a.desired {
		desired[k] = v
	}
	a.mu.Unlock()
	seen := map[string]hostapi.Observed{}
	for _, o := range list {
		seen[o.ID] = o
		if _, ok := desired[o.ID]; !ok {
			if err := a.cfg.Runtime.Stop(ctx, o.ID, 10*time.Second); err != nil {
				a.cfg.Log.Warn("stopping", "instance", o.ID, "err", err)
			}
			a.mu.Lock()
			delete(a.track, o.ID)
			a.mu.Unlock()
		}
	}
	// The instances step at once (at most parallelSteps at a time): a
	// start waits for its release, its namespace and its process, and one
	// instance's start must not hold up another's.
	out := make([]hostapi.Observed, 0, len(desired))
	var outMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelSteps)
	for id, d := range desired {
		a.mu.Lock()
		t := a.track[id]
		if t == nil {
			t = &tracked{}
			a.track[id] = t
		}
		a.mu.Unlock()
		o, running := seen[id]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ob := a.step(ctx, d, t, o, running)
			outMu.Lock()
			out = append(out, ob)
			outMu.Unlock()
		}()
	}
	wg.Wait()
	a.mu.Lock()
	for id := range a.track {
		if _, ok := desired[id]; !ok {
			delete(a.track, id)
		}
	}
	a.last = sortObserved(out)
	a.saveTracked()
	a.mu.Unlock()
}

// parallelSteps bounds the instances one Reconcile steps at once.
const parallelSteps = 8

// step moves one desired instance on and returns what to report. Steps of
// different instances run concurrently; t is this instance's alone.
func (a *Agent) step(ctx context.Context, d hostapi.Desired, t *tracked, o hostapi.Observed, known bool) hostapi.Observed {
	now := a.cfg.Now()
	report := func(o hostapi.Observed) hostapi.Observed {
		o.ID, o.Restarts = d.ID, t.restarts
		if t.failed {
			o.State, o.LastLog, o.ExitCode = hostapi.StateFailed, t.lastLog, t.exitCode
		}
		return o
	}
	if t.failed {
		return report(o)
	}
	switch {
	case !known && !t.waiting:
		return report(a.start(ctx, d, t))
	case known && o.State == hostapi.StateStopped && !t.waiting:
		t.crashes++
		t.exitCode, t.healthy = o.ExitCode, false
		if t.crashes >= a.cfg.MaxCrashes {
			t.failed = true
			t.lastLog = a.lastLines(ctx, d.ID)
			a.cfg.Log.Warn("instance failed", "instance", d.ID, "crashes", t.crashes)
			return report(o)
		}
		t.waiting, t.retryAt = true, now.Add(a.backoff(t.crashes))
		a.cfg.Log.Info("instance exited; restarting after backoff", "instance", d.ID, "exit", exitText(o.ExitCode), "at", t.retryAt)
		return report(o)
	case t.waiting:
		if now.Before(t.retryAt) {
			o.State = hostapi.StateStopped
			return report(o)
		}
		t.waiting = false
		t.restarts++
		return report(a.start(ctx, d, t))
	}
	// Running: its health. Until it is first healthy, every tick; then
	// every HealthInterval (a new answer only then).
	ok := t.lastOK
	if iv := durationOr(d.HealthInterval, 0); !t.healthy || iv <= 0 || now.Sub(t.checkedAt) >= iv {
		ok = a.healthy(ctx, d, o.Addr)
		t.checkedAt, t.lastOK = now, ok
	}
	if ok {
		o.State, t.healthy = hostapi.StateHealthy, true
		t.crashes = 0 // a healthy run resets the count
	} else if t.healthy {
		o.State = hostapi.StateUnhealthy
	} else {
		o.State = hostapi.StateStarting
	}
	return report(o)
}

func (a *Agent) start(ctx context.Context, d hostapi.Desired, t *tracked) hostapi.Observed {
	o, err := a.cfg.Runtime.Start(ctx, d)
	if err != nil {
		a.cfg.Log.Warn("starting", "instance", d.ID, "err", err)
		t.waiting, t.retryAt = true, a.cfg.Now().Add(a.backoff(t.crashes+1))
		t.crashes++
		if t.crashes >= a.cfg.MaxCrashes {
			t.failed, t.lastLog = true, []string{"start: " + err.Error()}
		}
		return hostapi.Observed{ID: d.ID, State: hostapi.StatePending}
	}
	return o
}

// backoff is BackoffBase·2^(n-1), at most BackoffMax.
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.BackoffBase
	for i := 1; i < n && d < a.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, a.cfg.BackoffMax)
}

// healthClient: each check's context bounds it (HealthTimeout, default 1 s).
var healthClient = &http.Client{}

// durationOr is s as a duration ("2s"), or def when empty or invalid.
func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

// healthy: a GET of the health path answers 2xx or 3xx; without a path,
// the port takes a connection.
func (a *Agent) healthy(ctx context.Context, d hostapi.Desired, addr string) bool {
	if addr == "" {
		return false
	}
	timeout := durationOr(d.HealthTimeout, time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if d.HealthPath == "" {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+d.HealthPath, nil)
	if err != nil {
		return false
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 400
}

// lastLines is the tail of an instance's log.
func (a *Agent) lastLines(ctx context.Context, id string) []string {
	var buf bytes.Buffer
	if err := a.cfg.Runtime.Logs(ctx, id, false, &buf); err != nil {
		return []string{"logs: " + err.Error()}
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) > a.cfg.LastLines {
		lines = lines[len(lines)-a.cfg.LastLines:]
	}
	return lines
}

func sortObserved(os []hostapi.Observed) []hostapi.Observed {
	for i := 1; i < len(os); i++ {
		for j := i; j > 0 && os[j].ID < os[j-1].ID; j-- {
			os[j], os[j-1] = os[j-1], os[j]
		}
	}
	return os
}

// logsHandler serves GET /instances/{id}/logs?follow=true to the API,
// which presents the agent key this run registered.
func (a *Agent) logsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /instances/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+a.key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
		if err := a.cfg.Runtime.Logs(r.Context(), r.PathValue("id"), r.URL.Query().Get("follow") == "true", fw); err != nil && !fw.wrote {
			http.Error(w, "no logs: "+err.Error(), http.StatusNotFound)
		}
	})
	return mux
}

type flushWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	_ = f.rc.Flush()
	return n, err
}

func (f *flushWriter) Flush() { _ = f.rc.Flush() }

func exitText(c *int) string {
	if c == nil {
		return "-"
	}
	return fmt.Sprint(*c)
}
