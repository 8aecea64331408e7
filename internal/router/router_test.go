package router

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// named answers its name and counts its requests.
func named(name string, n *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestPickAvoidsBusiest(t *testing.T) {
	p := &pool{}
	for i, n := range []int64{0, 2, 9} {
		b := &backend{id: string(rune('a' + i))}
		b.inflight.Store(n)
		p.backends = append(p.backends, b)
	}
	counts := map[string]int{}
	for range 3000 {
		counts[p.pick(nil).id]++
	}
	// Power of two choices: the busiest instance loses every pair it is
	// drawn in; the idlest wins every pair (2/3 of draws).
	if counts["c"] != 0 || counts["a"] < 1800 || counts["b"] < 800 {
		t.Fatalf("picks = %v", counts)
	}
	// Tried and down instances are skipped; down ones only when nothing
	// else is left.
	p.backends[0].downUntil.Store(time.Now().Add(time.Hour).UnixNano())
	for range 100 {
		if got := p.pick([]*backend{p.backends[1]}).id; got != "c" {
			t.Fatalf("pick with a down and b tried = %s, want c", got)
		}
	}
	if got := p.pick([]*backend{p.backends[1], p.backends[2]}); got != p.backends[0] {
		t.Fatalf("pick with only a (down) left = %v", got)
	}
	if got := p.pick(p.backends); got != nil {
		t.Fatalf("pick with all tried = %v", got)
	}
}

func TestBalanceOnInflight(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var slow, fast1, fast2 atomic.Int64
	e.instance(v, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		slow.Add(1)
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "slow")
	}))
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("fast1", &fast1)))
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("fast2", &fast2)))
	e.waitPool(v, 3)
	srv := e.serve(v)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				resp, err := srv.Client().Get(srv.URL)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("GET: %v %v", resp, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	total := slow.Load() + fast1.Load() + fast2.Load()
	if total != 480 {
		t.Fatalf("instances saw %d requests, want 480", total)
	}
	// Random choice would give the slow instance a third; two choices on
	// in-flight requests give it much less.
	if slow.Load()*5 > total || fast1.Load()*4 < total || fast2.Load()*4 < total {
		t.Fatalf("slow %d, fast %d and %d of %d", slow.Load(), fast1.Load(), fast2.Load(), total)
	}
	t.Logf("slow %d, fast %d and %d", slow.Load(), fast1.Load(), fast2.Load())
}

func TestRetryConnectFailure(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var live atomic.Int64
	e.instance(v, hostapi.StateHealthy, deadAddr(t))
	e.instance(v, hostapi.StateHealthy, deadAddr(t))
	e.instance(v, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		live.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Write(b) // echo
	}))
	e.waitPool(v, 3)
	srv := e.serve(v)
	for i := range 20 {
		body := strings.Repeat("x", i*1000)
		resp, err := srv.Client().Post(srv.URL, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != body {
			t.Fatalf("POST %d: %d, %d bytes back of %d", i, resp.StatusCode, len(b), len(body))
		}
	}
	if live.Load() != 20 {
		t.Fatalf("live instance saw %d requests, want 20", live.Load())
	}
	if c := &e.rt.counts; c.proxied.Load() != 20 || c.retries.Load() == 0 || c.unreachable.Load() != 0 {
		t.Fatalf("counters: proxied %d, retries %d, unreachable %d", c.proxied.Load(), c.retries.Load(), c.unreachable.Load())
	}
}

// breaking is an instance that reads the request and drops the
// connection without answering.
func breaking(n *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}
}

func TestRetryAfterSendOnlyIdempotent(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var broken, good atomic.Int64
	e.instance(v, hostapi.StateHealthy, startInstance(t, breaking(&broken)))
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("good", &good)))
	e.waitPool(v, 2)
	srv := e.serve(v)
	c := srv.Client()
	for range 20 {
		if code, body, _ := get(t, c, srv.URL); code != 200 || body != "good" {
			t.Fatalf("GET = %d %q", code, body)
		}
	}
	if broken.Load() == 0 {
		t.Fatal("the breaking instance was never tried")
	}
	// A POST the breaking instance took is not sent again: 502, and every
	// POST reached exactly one instance.
	broken.Store(0)
	good.Store(0)
	failed := 0
	for range 40 {
		resp, err := c.Post(srv.URL, "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
		case 502:
			failed++
			if resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("502 of type %q", resp.Header.Get("Content-Type"))
			}
		default:
			t.Fatalf("POST = %d", resp.StatusCode)
		}
	}
	if int64(failed) != broken.Load() || broken.Load()+good.Load() != 40 || failed == 0 {
		t.Fatalf("%d failed; broken saw %d, good %d (of 40)", failed, broken.Load(), good.Load())
	}
	// A PUT with a body was consumed: not retried either. A DELETE without
	// one is.
	for range 20 {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("DELETE = %d", resp.StatusCode)
		}
	}
}

func TestNoHealthyInstance(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	e.instance(v, hostapi.StateUnhealthy, "127.0.0.1:1")
	srv := e.serve(v)
	start := time.Now()
	code, body, h := get(t, srv.Client(), srv.URL)
	if time.Since(start) > time.Second {
		t.Fatalf("503 took %v: held without an instance coming", time.Since(start))
	}
	if code != 503 || h.Get("Retry-After") != "1" || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("= %d, Retry-After %q, %q", code, h.Get("Retry-After"), h.Get("Content-Type"))
	}
	var p struct {
		Type, Detail string
		Status       int
		RequestID    string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != 503 ||
		p.Type != "https://cairn.dev/problems/no-healthy-instance" || p.RequestID == "" {
		t.Fatalf("body %s (%v)", body, err)
	}
	// Every instance refusing connections is a 502, not a hang.
	e.instance(v, hostapi.StateHealthy, deadAddr(t))
	e.waitPool(v, 1)
	if code, _, _ := get(t, srv.Client(), srv.URL); code != 502 {
		t.Fatalf("all instances dead = %d, want 502", code)
	}
	if c := &e.rt.counts; c.noInstance.Load() != 1 || c.unreachable.Load() != 1 || c.proxied.Load() != 0 {
		t.Fatalf("counters: no_instance %d, unreachable %d, proxied %d", c.noInstance.Load(), c.unreachable.Load(), c.proxied.Load())
	}
}

func TestForwardedHeaders(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	e.instance(v, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
	}))
	e.waitPool(v, 1)
	srv := e.serve(v)
	for _, tc := range []struct{ sent, want string }{{"client-id_1.2", "client-id_1.2"}, {"bad id!", ""}, {"", ""}} {
		req, _ := http.NewRequest("GET", srv.URL+"/p?q=1", nil)
		req.Host = "app.example.test"
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("X-Forwarded-Host", "evil.test")
		if tc.sent != "" {
			req.Header.Set("X-Request-Id", tc.sent)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h, host := <-seen, <-hosts
		id := h.Get("X-Request-Id")
		if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" ||
			h.Get("X-Forwarded-Host") != "app.example.test" || host != "app.example.test" {
			t.Fatalf("instance saw %v, host %q", h, host)
		}
		if tc.want != "" && id != tc.want || tc.want == "" && (len(id) != 16 || id == tc.sent) {
			t.Fatalf("sent id %q: instance saw %q", tc.sent, id)
		}
		if resp.Header.Get("X-Request-Id") != id {
			t.Fatalf("client got id %q, instance %q", resp.Header.Get("X-Request-Id"), id)
		}
	}
}

// TestUnhealthyStopsAtOnce: an instance reported unhealthy gets no new
// request once the change reaches the router, and the request it holds
// finishes.
func TestUnhealthyStopsAtOnce(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var aN, bN atomic.Int64
	a := e.instance(v, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		if aN.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "a")
	}))
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("b", &bN)))
	e.waitPool(v, 2)
	srv := e.serve(v)
	c := srv.Client()
	// Requests until one is held by a.
	held := make(chan string, 1)
	go func() {
		for aN.Load() == 0 {
			resp, err := c.Get(srv.URL)
			if err != nil {
				held <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == "a" {
				held <- "a"
				return
			}
		}
	}()
	<-entered
	var addr string
	for k, b := range e.rt.table.Load().all {
		if b.id == a {
			addr = strings.Fields(k)[1]
		}
	}
	e.report(a, hostapi.StateUnhealthy, addr)
	start := time.Now()
	e.waitPool(v, 1)
	t.Logf("router dropped the instance %v after the heartbeat", time.Since(start))
	before := aN.Load()
	for range 30 {
		if code, body, _ := get(t, c, srv.URL); code != 200 || body != "b" {
			t.Fatalf("after unhealthy: %d %q", code, body)
		}
	}
	if aN.Load() != before {
		t.Fatalf("unhealthy instance got %d new requests", aN.Load()-before)
	}
	close(release)
	if got := <-held; got != "a" {
		t.Fatalf("held request ended with %q", got)
	}
}

func TestStreamAndWebSocketPassThrough(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	next := make(chan struct{})
	e.instance(v, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			echoWS(t, w, r)
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
	}))
	e.waitPool(v, 1)
	srv := e.serve(v)
	testStream(t, srv.Client(), srv.URL, next)
	testWebSocketClient(t, nil, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws")
}

// testStream reads the first flushed line of url before the instance may
// write the second.
func testStream(t *testing.T, c *http.Client, url string, next chan struct{}) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, buf); got <- err }()
	select {
	case err := <-got:
		if err != nil || string(buf) != "first\n" {
			t.Fatalf("first chunk %q, %v", buf, err)
		}
	case <-time.After(5 * time.Second):
		close(next)
		t.Fatal("the flushed chunk did not arrive before the response ended")
	}
	close(next)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

// TestHoldUntilHealthy: a request for a version whose instance is
// starting waits for it and is answered once it is healthy.
func TestHoldUntilHealthy(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var n atomic.Int64
	addr := startInstance(t, named("late", &n))
	id := e.instance(v, hostapi.StateStarting, addr)
	srv := e.serve(v)
	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			got <- answer{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp.StatusCode, string(b)}
	}()
	select {
	case a := <-got:
		t.Fatalf("answered %v while the instance was starting", a)
	case <-time.After(300 * time.Millisecond):
	}
	e.report(id, hostapi.StateHealthy, addr)
	select {
	case a := <-got:
		if a.code != 200 || a.body != "late" {
			t.Fatalf("held request = %v", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("held request not answered 3 s after the instance became healthy")
	}
}

// TestLostHost: the instances of a host declared lost get no new request
// once the change reaches the router, though their records still say
// healthy.
func TestLostHost(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var n atomic.Int64
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("on-h1", &n)))
	e.waitPool(v, 1)
	h, err := e.store.GetHost(context.Background(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	if lost, err := e.store.MarkLostHosts(context.Background(), h.LastSeen.Add(time.Nanosecond), "test"); err != nil || len(lost) != 1 {
		t.Fatalf("MarkLostHosts = %v, %v", lost, err)
	}
	e.waitPool(v, 0)
	srv := e.serve(v)
	if code, _, _ := get(t, srv.Client(), srv.URL); code != 503 || n.Load() != 0 {
		t.Fatalf("after host lost: %d, instance saw %d", code, n.Load())
	}
}

// TestDeadInstanceProbed: an instance whose connect fails costs the
// request that found it a retry, and gets no request after that (not one
// retry more) until a connect to it succeeds again: the probe's, within
// ProbeEvery of it listening again.
func TestDeadInstanceProbed(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var live, back atomic.Int64
	dead := deadAddr(t)
	e.instance(v, hostapi.StateHealthy, dead)
	e.instance(v, hostapi.StateHealthy, startInstance(t, named("live", &live)))
	e.waitPool(v, 2)
	srv := e.serve(v)
	start, n := time.Now(), 0
	for time.Since(start) < 4*ProbeEvery {
		if code, body, _ := get(t, srv.Client(), srv.URL); code != 200 || body != "live" {
			t.Fatalf("request %d: %d %q", n, code, body)
		}
		n++
		time.Sleep(2 * time.Millisecond)
	}
	if r := e.rt.counts.retries.Load(); r != 1 {
		t.Fatalf("%d requests over %v: %d retries; want 1 (the dead instance tried once)", n, 4*ProbeEvery, r)
	}

	// It listens again: the probe puts it back.
	ln, err := net.Listen("tcp", dead)
	if err != nil {
		t.Fatalf("listen again on %s: %v", dead, err)
	}
	s := &http.Server{Handler: named("back", &back)}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	listening := time.Now()
	for back.Load() == 0 {
		if time.Since(listening) > 3*ProbeEvery {
			t.Fatalf("the instance listens again and got no request in %v", time.Since(listening))
		}
		get(t, srv.Client(), srv.URL)
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%d requests, 1 retry while the instance was dead; back in %v after it listened again", n, time.Since(listening).Round(time.Millisecond))
}
