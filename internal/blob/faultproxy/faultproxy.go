// Package faultproxy is an HTTP reverse proxy on 127.0.0.1 that injects
// faults into the requests it forwards: 500 answers, connection resets,
// stalls and truncated or stalled response bodies. Tests put it between a
// client and a real server (an S3 endpoint, say) to check retries and the
// handling of partial failures. It forwards only to loopback addresses.
//
// A Plan says which fault hits which requests; Set replaces it at any time.
// The proxy keeps the client's Host header, so signed requests (AWS SigV4)
// still verify at the server.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what happens to a request the Plan picks.
type Fault int

const (
	None      Fault = iota
	Status500       // answer 500 InternalError (S3 XML) without forwarding
	Reset           // reset the client's connection (TCP RST) without answering
	Stall           // wait Plan.Stall, or until the client gives up, then forward
	Truncate        // forward; send the headers with the full Content-Length, then cut the body halfway
	StallBody       // forward; send the headers and half the body, then stall for Plan.Stall and cut
)

// Plan picks the requests that get a fault.
type Plan struct {
	Fault Fault
	// Match limits the plan to some requests (nil: all).
	Match func(*http.Request) bool
	// Count > 0 faults the next Count matching requests; otherwise each
	// matching request is faulted with probability Fraction (1: all).
	Count    int
	Fraction float64
	// Stall is how long Stall and StallBody hold a request (default 5 s);
	// they end early when the client disconnects or the proxy closes.
	Stall time.Duration
	// Seed makes the Fraction choices reproducible.
	Seed uint64
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	url   string
	srv   *http.Server
	rp    *httputil.ReverseProxy
	done  chan struct{}
	close sync.Once

	mu   sync.Mutex
	plan Plan
	left int
	rng  *rand.Rand

	requests, injected atomic.Int64
}

// New starts a proxy on 127.0.0.1:0 in front of target (http://HOST:PORT,
// HOST a loopback address), with no faults planned. Close stops it.
func New(target string) (*Proxy, error) {
	t, err := url.Parse(target)
	if err != nil || t.Scheme != "http" || t.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q: want http://HOST:PORT", target)
	}
	if ip := net.ParseIP(t.Hostname()); t.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(t)
			pr.Out.Host = pr.In.Host // part of the request's signature
		},
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the proxy's base URL, http://127.0.0.1:PORT.
func (p *Proxy) URL() string { return p.url }

// Set replaces the plan.
func (p *Proxy) Set(plan Plan) {
	if plan.Stall <= 0 {
		plan.Stall = 5 * time.Second
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan, p.left = plan, plan.Count
	p.rng = rand.New(rand.NewPCG(plan.Seed, 0x5eed))
}

// Clear stops injecting faults.
func (p *Proxy) Clear() { p.Set(Plan{}) }

// Requests is the number of requests received so far; Injected how many of
// them were faulted. ResetCounts sets both to zero.
func (p *Proxy) Requests() int64 { return p.requests.Load() }
func (p *Proxy) Injected() int64 { return p.injected.Load() }
func (p *Proxy) ResetCounts()    { p.requests.Store(0); p.injected.Store(0) }

// Close stops the proxy, ending stalled requests and open connections.
func (p *Proxy) Close() error {
	p.close.Do(func() { close(p.done) })
	return p.srv.Close()
}

// pick returns the fault for r (None if the plan passes it by).
func (p *Proxy) pick(r *http.Request) (Fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.plan
	if pl.Fault == None || (pl.Match != nil && !pl.Match(r)) {
		return None, 0
	}
	if pl.Count > 0 {
		if p.left == 0 {
			return None, 0
		}
		p.left--
	} else if p.rng.Float64() >= pl.Fraction {
		return None, 0
	}
	return pl.Fault, pl.Stall
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	fault, stall := p.pick(r)
	if fault != None {
		p.injected.Add(1)
	}
	switch fault {
	case Status500:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>InternalError</Code><Message>faultproxy: injected 500</Message></Error>`)
		return
	case Reset:
		reset(w)
		return
	case Stall:
		if !p.sleep(r.Context(), stall) {
			return
		}
	case Truncate, StallBody:
		cw := &cutWriter{ResponseWriter: w, keep: -1}
		if fault == StallBody {
			cw.stall = func() { p.sleep(r.Context(), stall) }
		}
		w = cw
	}
	p.rp.ServeHTTP(w, r)
}

// sleep waits d; it reports false if the client or the proxy went away first.
func (p *Proxy) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-p.done:
	}
	return false
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection anyway
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

var errCut = errors.New("faultproxy: body cut")

// cutWriter passes the headers on whole, then only the first half of the
// body (by Content-Length); its write error makes the ReverseProxy abort the
// connection. Responses without a Content-Length pass through whole.
type cutWriter struct {
	http.ResponseWriter
	keep, written int64
	stall         func()
}

func (c *cutWriter) WriteHeader(code int) {
	var n int64
	if _, err := fmt.Sscan(c.Header().Get("Content-Length"), &n); err == nil {
		c.keep = n / 2
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.keep < 0 || c.written+int64(len(b)) <= c.keep {
		n, err := c.ResponseWriter.Write(b)
		c.written += int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(b[:c.keep-c.written])
	c.written += int64(n)
	http.NewResponseController(c.ResponseWriter).Flush()
	if c.stall != nil {
		c.stall()
	}
	return n, errCut
}
