package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

// soakFor is how long TestGCSoak runs: CAIRN_SOAK (e.g. 30s), default 8s.
func soakFor(t *testing.T) time.Duration {
	d := 8 * time.Second
	if s := os.Getenv("CAIRN_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 || d > 5*time.Minute {
			t.Fatalf("CAIRN_SOAK=%q: want a duration up to 5m", s)
		}
	}
	if testing.Short() {
		d = 2 * time.Second
	}
	return d
}

// soak is the shared state of TestGCSoak's workers.
type soak struct {
	e      *env
	deps   []string
	client *http.Client
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []string
	count  sync.Map // what → *atomic.Int64
}

func (s *soak) fail(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 20 {
		s.errs = append(s.errs, fmt.Sprintf(format, a...))
	}
}

func (s *soak) inc(what string) {
	c, _ := s.count.LoadOrStore(what, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

func (s *soak) n(what string) int64 {
	if c, ok := s.count.Load(what); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// call sends one API request from a worker; it never calls t.Fatal.
func (s *soak) call(method, path string, body any, out any) int {
	var r io.Reader
	if b, ok := body.([]byte); ok {
		r = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.e.api+path, r)
	req.Header.Set("Authorization", "Bearer "+s.e.token)
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		s.fail("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil && resp.StatusCode < 300 {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// loop runs fn until the soak stops.
func (s *soak) loop(fn func(r *rand.Rand)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			fn(r)
		}
	}()
}

// want records an unexpected status of what.
func (s *soak) want(what string, code int, ok ...int) {
	for _, c := range ok {
		if code == c {
			s.inc(fmt.Sprintf("%s %d", what, code))
			return
		}
	}
	s.fail("%s: status %d, want one of %v", what, code, ok)
}

// TestGCSoak: publishes, activations, rollbacks, domain repoints and GC
// runs (grace 0, retention 0) all at once, while readers fetch through the
// edge. Afterwards: no 5xx anywhere, every version not collected has its
// bytes and they verify, and every collection was of an unreferenced version.
func TestGCSoak(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.GCGrace, c.GCDrain, c.GCInterval, c.RetentionDays = 0, 100*time.Millisecond, 30*time.Millisecond, 0
	})
	s := &soak{e: e, deps: []string{"soak0", "soak1", "soak2"}, stop: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for i, d := range s.deps {
		e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": d}), nil)
		e.publish(d, page(i))
		for _, h := range []string{"www." + d + ".test", "pin." + d + ".test"} {
			e.do("POST", "/v1/domains", e.jsonBody(map[string]any{"hostname": h, "deployment": d}), nil)
		}
	}
	for range 2 { // publishers: a small pool of contents, shared across deployments
		s.loop(func(r *rand.Rand) {
			d := s.deps[r.IntN(len(s.deps))]
			code := s.call("POST", fmt.Sprintf("/v1/deployments/%s/versions?activate=%v", d, r.IntN(2) == 0),
				tarOf(t, page(r.IntN(8))), nil)
			s.want("publish", code, 201)
		})
	}
	s.loop(func(r *rand.Rand) {
		d := s.deps[r.IntN(len(s.deps))]
		code := s.call("POST", "/v1/deployments/"+d+"/activate", map[string]any{"version_number": 1 + r.IntN(s.latest(d))}, nil)
		s.want("activate", code, 200, 410)
	})
	s.loop(func(r *rand.Rand) {
		code := s.call("POST", "/v1/deployments/"+s.deps[r.IntN(len(s.deps))]+"/rollback", nil, nil)
		s.want("rollback", code, 200, 409, 410)
	})
	s.loop(func(r *rand.Rand) {
		d := s.deps[r.IntN(len(s.deps))]
		var n any // follow the active version, or pin one
		if r.IntN(3) > 0 {
			n = 1 + r.IntN(s.latest(d))
		}
		code := s.call("PATCH", "/v1/domains/pin."+d+".test", map[string]any{"version_number": n}, nil)
		s.want("repoint", code, 200, 410)
	})
	s.loop(func(r *rand.Rand) {
		s.want("gc", s.call("POST", "/v1/gc", map[string]any{"dry_run": r.IntN(4) == 0}, nil), 200, 409)
		time.Sleep(20 * time.Millisecond)
	})
	for range 8 {
		s.loop(s.read)
	}
	time.Sleep(soakFor(t))
	close(s.stop)
	s.wg.Wait()
	for _, err := range s.errs {
		t.Error(err)
	}
	collects := s.check(t)
	t.Logf("%d edge reads (%d answered 410 by the grace-0 race); publish %d; activate 200/410 %d/%d; rollback %d/%d; repoint %d/%d; gc runs %d (+%d busy); %d versions collected",
		s.n("read"), s.n("read 410"), s.n("publish 201"), s.n("activate 200"), s.n("activate 410"), s.n("rollback 200"),
		s.n("rollback 410"), s.n("repoint 200"), s.n("repoint 410"), s.n("gc 200"), s.n("gc 409"), collects)
	if n := s.n("read 410"); n*1000 > s.n("read") {
		t.Errorf("%d of %d reads answered 410: more than the rare grace-0 race", n, s.n("read"))
	}
	if collects == 0 || s.n("read") == 0 {
		t.Errorf("the soak collected %d versions in %d reads: it tested nothing", collects, s.n("read"))
	}
}

// page is one of a few sites whose bytes depend only on i.
func page(i int) map[string]string {
	return map[string]string{"index.html": fmt.Sprintf("<h1>page %d</h1>", i), "app.js": fmt.Sprintf("// %d\n", i)}
}

// latest returns the newest version number of dep (at least 1).
func (s *soak) latest(dep string) int {
	var out struct {
		Versions []struct {
			VersionNumber int `json:"version_number"`
		} `json:"versions"`
	}
	s.call("GET", "/v1/deployments/"+dep+"/versions?limit=1", nil, &out)
	if len(out.Versions) == 0 {
		return 1
	}
	return out.Versions[0].VersionNumber
}

// read fetches a page through the edge: it must always be served.
func (s *soak) read(r *rand.Rand) {
	d := s.deps[r.IntN(len(s.deps))]
	host := []string{d + ".localhost", "www." + d + ".test", "pin." + d + ".test"}[r.IntN(3)]
	req, _ := http.NewRequest("GET", s.e.edge+"/index.html", nil)
	req.Host = host
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail("edge %s: %v", host, err)
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.inc("read")
	switch {
	case resp.StatusCode == http.StatusGone && err == nil:
		// Grace 0 only: the edge resolves a host with two reads (pointer,
		// then version); a move away from the version and its whole
		// collection can fall between them. A grace period rules it out.
		s.inc("read 410")
	case err != nil || resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("<h1>page ")):
		s.fail("edge %s: %d %q (%v), version %s", host, resp.StatusCode, b, err, resp.Header.Get("X-Cairn-Version"))
	}
}
