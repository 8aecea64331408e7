package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/hostapi"
)

// delayedStart is a Runtime whose Start takes long, as a microVM's boot
// preparation does under TCG on a busy host.
type delayedStart struct {
	*testproc.Runtime
	delay time.Duration
}

func (s delayedStart) Start(ctx context.Context, d hostapi.Desired) (hostapi.Observed, error) {
	time.Sleep(s.delay)
	return s.Runtime.Start(ctx, d)
}

// TestHeartbeatDuringSlowStart: the agent keeps heartbeating while a
// reconcile is blocked in a long Start, so the API does not take the host
// for lost (it did, every few seconds, with qemu-microvm under TCG).
func TestHeartbeatDuringSlowStart(t *testing.T) {
	var (
		mu    sync.Mutex
		beats []time.Time
	)
	d := hostapi.Desired{ID: "slow-1", Cmd: []string{hostApp(t)}, Port: 8080}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/hosts":
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]any{"id": "host_slow"})
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/heartbeat"):
			mu.Lock()
			beats = append(beats, time.Now())
			mu.Unlock()
			w.WriteHeader(204)
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/desired"):
			if r.URL.Query().Get("gen") == "1" { // no change: hold the long poll
				select {
				case <-r.Context().Done():
				case <-time.After(time.Second):
				}
			}
			json.NewEncoder(w).Encode(api.DesiredSet{Gen: "1", Instances: []hostapi.Desired{d}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	rt, err := testproc.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Stop(context.Background(), d.ID, time.Second) })
	const delay = 2 * time.Second
	a, err := New(Config{API: client.New(srv.URL, "t"), Runtime: delayedStart{rt, delay}, DataDir: t.TempDir(),
		Heartbeat: 100 * time.Millisecond, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(a.Observed()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(a.Observed()) == 0 {
		t.Fatal("the slow start never finished")
	}
	mu.Lock()
	defer mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(beats); i++ {
		gap = max(gap, beats[i].Sub(beats[i-1]))
	}
	t.Logf("%d heartbeats, longest gap %v, during a %v Start", len(beats), gap, delay)
	if len(beats) < 10 || gap > time.Second {
		t.Errorf("%d heartbeats, longest gap %v: the heartbeat waited for the %v Start", len(beats), gap, delay)
	}
}
