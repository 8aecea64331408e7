// Package router owns the edge's reverse proxy for dynamic deployments
// (kind rootfs or oci): a request the edge resolved to a version is sent to
// one of that version's healthy instances.
//
// The instance table is read from the metadata store (meta.Hosts) and
// reloaded whenever the edge hears of a change (Invalidate): a heartbeat
// that moves an instance's state or address, a placement that removes one,
// a host lost or back. A new table replaces the old one atomically; an
// instance absent from it gets no new request, while requests already sent
// to it finish.
//
// Balancing is power-of-two-choices on the requests in flight to each
// instance. A failed connect is retried on another instance for any
// method; a failure after the request was sent is retried only for an
// idempotent method without a body. An instance whose connect failed gets
// no request again until a connect to it succeeds: the router dials it
// every ProbeEvery in the background (markDown), so a dead instance (its
// host gone, its process killed) costs the one request that found it
// dead a retry, and no later request anything, until the scheduler
// declares its host lost and the table drops it. Upgrades (WebSocket) and streamed
// responses pass through.
package router

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// Store is what the router reads: hosts, instances and replica counts in
// one snapshot; and the wakes through which versions sleep (scale to zero,
// see wake.go).
type Store interface {
	PlacementState(ctx context.Context) (*meta.PlacementState, error)
	meta.Wakes
}

// Tuning of the proxy. Instances sit on the same network as the edge (the
// host bridge, or a region's network), so a connect that takes longer
// than DialTimeout is a dead instance.
const (
	DialTimeout   = time.Second
	MaxIdlePerIns = 512 // idle keep-alive connections kept per instance
	RetryAfter    = "1" // seconds, on a 503 when no instance is healthy
	maxAttempts   = 3   // instances one request may try
	// HoldFor bounds how long a request waits for an instance that is
	// being placed or started (see ServeVersion); at most maxHeld wait.
	HoldFor = 10 * time.Second
	maxHeld = 4096
	// ProbeEvery is how often an instance whose connect failed is dialled
	// again; the first connect that succeeds puts it back.
	ProbeEvery    = 500 * time.Millisecond
	reloadTimeout = 10 * time.Second
)

// Config configures a Router. Store is required.
type Config struct {
	Store  Store
	Logger *slog.Logger // nil discards
	// DialContext, if set, replaces the dialer (its errors count as
	// connect failures).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Router is an http handler of dynamic versions; see ServeVersion. It is
// safe for concurrent use.
type Router struct {
	store Store
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	tr    *http.Transport // requests with a body, upgrades (see direct)
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	done  chan struct{} // closed when Run returns: probes stop

	table  atomic.Pointer[table]
	want   atomic.Uint64 // generation asked for by Invalidate
	kick   chan struct{} // wakes Run
	loadMu sync.Mutex    // one reload at a time

	pubMu   sync.Mutex
	changed chan struct{} // closed when a new table is published
	held    atomic.Int64  // requests waiting in hold
	counts  counts
	wakes   wakes
}

// New returns a Router. It does no I/O; Run keeps its table fresh.
func New(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	dial := cfg.DialContext
	if dial == nil {
		dial = d.DialContext
	}
	rt := &Router{store: cfg.Store, log: cfg.Logger, kick: make(chan struct{}, 1), changed: make(chan struct{}),
		done: make(chan struct{})}
	rt.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &connectError{err}
		}
		return c, nil
	}
	rt.wakes.store = cfg.Store
	rt.tr = &http.Transport{
		DialContext:           rt.dial,
		MaxIdleConns:          0, // bounded per instance
		MaxIdleConnsPerHost:   MaxIdlePerIns,
		IdleConnTimeout:       IdleConnTimeout,
		ResponseHeaderTimeout: 0, // an app may take its time; the client's going away ends it
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    &balancer{rt: rt},
		BufferPool:   bufPool{},
		ErrorHandler: rt.proxyError,
		ErrorLog:     log.New(slogWriter{cfg.Logger}, "", 0),
	}
	return rt
}

// Invalidate asks for the instance table to be read again (the edge calls
// it on every change its metadata store announces).
func (rt *Router) Invalidate() {
	rt.want.Add(1)
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// Run reloads the table after each Invalidate until ctx ends, then closes
// idle connections and returns nil. Meanwhile it closes the connections
// idle for longer than IdleConnTimeout.
func (rt *Router) Run(ctx context.Context) error {
	defer rt.closeIdle()
	defer close(rt.done)
	sweep := time.NewTicker(IdleConnTimeout / 3)
	defer sweep.Stop()
	touched := make(chan struct{})
	go func() { defer close(touched); rt.touchLoop(ctx) }()
	defer func() { <-touched }()
	rt.Invalidate() // the first table
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-sweep.C:
			if t := rt.table.Load(); t != nil {
				for _, b := range t.all {
					b.idle.sweep(now.Add(-IdleConnTimeout), false)
				}
			}
		case <-rt.kick:
			if err := rt.reload(ctx); err != nil && ctx.Err() == nil {
				rt.log.Warn("router: reading instances failed", "err", err)
				select { // try again shortly
				case <-ctx.Done():
					return nil
				case <-time.After(250 * time.Millisecond):
					rt.Invalidate()
				}
			}
		}
	}
}

// closeIdle closes every idle connection.
func (rt *Router) closeIdle() {
	rt.tr.CloseIdleConnections()
	if t := rt.table.Load(); t != nil {
		for _, b := range t.all {
			b.idle.sweep(time.Time{}, true)
		}
	}
}

type poolKey struct{}

// ServeVersion proxies r to a healthy instance of version versionID of
// deployment depID (the edge resolved the request's host to it; active:
// it is the deployment's active version). When none is healthy but one
// is coming (an instance of the version pending or starting, or the
// version is active and the deployment has replicas, which placement is
// about to create), the request waits for it, at most HoldFor. A version
// with no instance at all that may sleep (a preview, or the active version
// of an autostop deployment) is woken, and the request waits at most
// WakeHoldFor (see wake.go). Otherwise, or after that: 503 problem+json
// with Retry-After.
func (rt *Router) ServeVersion(w http.ResponseWriter, r *http.Request, depID, versionID string, active bool) {
	p := rt.pool(r.Context(), versionID)
	rt.seen(rt.table.Load(), depID, versionID, active)
	if p == nil || len(p.backends) == 0 {
		p = rt.hold(r.Context(), depID, versionID, active)
	}
	if p == nil || len(p.backends) == 0 {
		rt.unavailable(w, r, errNoInstance)
		return
	}
	ctx := context.WithValue(r.Context(), poolKey{}, p)
	rt.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// pool returns the current pool of versionID. A table older than the
// latest Invalidate without an instance of the version (it may have
// appeared since) is read again first, as is a table never read.
func (rt *Router) pool(ctx context.Context, versionID string) *pool {
	t := rt.table.Load()
	if t != nil {
		if p := t.pools[versionID]; p != nil && len(p.backends) > 0 || t.gen >= rt.want.Load() {
			return p
		}
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := rt.reload(ctx); err != nil {
		rt.log.Warn("router: reading instances failed", "err", err)
		if t == nil {
			return nil
		}
	}
	return rt.table.Load().pools[versionID]
}

var (
	errNoInstance  = errors.New("router: no healthy instance")
	errUnreachable = errors.New("router: no instance answered")
)

func (rt *Router) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	rt.counts.noInstance.Add(1)
	w.Header().Set("Retry-After", RetryAfter)
	w.Header().Set("Cache-Control", "no-store")
	problem.Write(w, r, nil, problem.NoInstance(err))
}

// proxyError answers a request no instance took.
func (rt *Router) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNoInstance) {
		rt.unavailable(w, r, err)
		return
	}
	rt.counts.unreachable.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	lg := rt.log
	if r.Context().Err() != nil {
		lg = nil // the client left
	}
	problem.Write(w, r, lg, problem.Unreachable(errors.Join(errUnreachable, err)))
}

// rewrite makes the outbound request: X-Forwarded-For/-Proto/-Host set by
// the router (any the client sent are dropped), the client's Host kept,
// and the request id (httplog's, or the client's if sane) passed on.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "instance" // the balancer picks the address per attempt
	pr.SetXForwarded()
	pr.Out.Host = pr.In.Host
	id := httplog.RequestID(pr.In.Context())
	if id == "" {
		id = pr.In.Header.Get(httplog.Header)
		if !httplog.ValidID(id) {
			id = httplog.NewID()
		}
	}
	pr.Out.Header[httplog.Header] = []string{id}
}

// healthy reports whether an instance may get requests: healthy, with an
// address, on a host that is not lost.
func healthy(i *meta.Instance, lost map[string]bool) bool {
	return i.State == hostapi.StateHealthy && i.Addr != "" && !lost[i.HostID]
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("router: proxy", "msg", string(p))
	return len(p), nil
}

type bufPool struct{}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufPool) Get() []byte  { return *bufs.Get().(*[]byte) }
func (bufPool) Put(b []byte) { bufs.Put(&b) }
