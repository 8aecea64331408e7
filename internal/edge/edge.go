// Package edge owns the HTTP server that serves static releases straight out
// of their stored artifacts, with no per-app process.
//
// A request goes Host → deployment or domain → version → release → TOC →
// file. Every deployment is served at {name}.{base} (its active version),
// every version at {name}--v{N}.{base} (an immutable preview URL), and any
// other host is looked up as a custom domain.
//
// Each request resolves its route once and serves the whole response from
// that one release, so a rollback is atomic per request. Routes are cached
// per host and re-resolved after Invalidate; tables of contents are cached
// per release (they never change); verified file contents are cached in a
// byte-bounded LRU. No byte reaches a client before it was checked against
// the stored hashes: a failure before the headers are sent answers 502/504
// problem+json, a failure after them aborts the connection.
package edge

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
)

// Defaults of Config.
const (
	DefaultCacheBytes    = 256 << 20
	DefaultMaxCachedFile = 16 << 20

	resyncEvery  = 30 * time.Second // full route resync without a Watcher signal
	maxTOCs      = 1024             // releases whose TOC stays cached
	maxRoutes    = 16384            // hosts in the route cache before it is emptied
	fetchTimeout = 30 * time.Second // bound on one shared metadata/storage fetch
)

// Store is what the edge needs of the metadata store: records, and the
// signal of their changes.
type Store interface {
	meta.Store
	meta.Watcher
}

// Config configures an Edge. Meta and Blobs are required.
type Config struct {
	Meta          Store
	Blobs         blob.Store
	BaseDomain    string       // e.g. "localhost": {name}.{base} and {name}--v{N}.{base}
	CacheBytes    int64        // bound of the hot-file cache; 0 means DefaultCacheBytes
	MaxCachedFile int64        // larger files are streamed, never cached; 0 means DefaultMaxCachedFile
	Logger        *slog.Logger // nil discards
	// Dynamic, if set, serves the versions of dynamic deployments (kind
	// rootfs or oci): internal/router. Without it their hosts answer 404.
	Dynamic Dynamic
	// TLSPort is the port of the edge's TLS listener ("" : none), where a
	// domain with https_redirect sends plain HTTP requests ("443" is
	// left out of the URL).
	TLSPort string
	// ProxyAllowPrivate lets proxy rules (_redirects, 200 to an external
	// URL) reach loopback, private and link-local addresses; off, the edge
	// connects only to public ones (tests, and operators whose sites proxy
	// to their own network, turn it on).
	ProxyAllowPrivate bool
	// ProxyTimeout bounds the wait for a proxy target's response headers;
	// 0 means DefaultProxyTimeout.
	ProxyTimeout time.Duration
}

// Dynamic serves requests for versions that run as instances. The edge
// resolves the host to a version exactly as for a static one, then hands
// the request over (any method); Invalidate is called on every change the
// metadata store announces.
type Dynamic interface {
	// ServeVersion serves r by version versionID of deployment depID;
	// active: it is the deployment's active version (not a preview or a
	// domain's pinned version).
	ServeVersion(w http.ResponseWriter, r *http.Request, depID, versionID string, active bool)
	Invalidate()
}

// Edge is an http.Handler serving static releases. It is safe for
// concurrent use. Run keeps its routes fresh; Invalidate forces it.
type Edge struct {
	meta    Store
	blobs   blob.Store
	base    string
	maxFile int64
	log     *slog.Logger
	resync  time.Duration
	tlsPort string
	dyn     Dynamic
	proxy   *httputil.ReverseProxy // of proxy rules

	routes routeTable
	tocs   *lru[string, *tocEntry]
	tocFl  flight[string, *tocEntry]
	files  *lru[fileKey, *file]
	fileFl flight[fileKey, *file]
	// gzipping holds a token while a file is gzipped in the background.
	gzipping chan struct{}
}

// New returns an Edge. It does no I/O.
func New(cfg Config) *Edge {
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.MaxCachedFile <= 0 {
		cfg.MaxCachedFile = DefaultMaxCachedFile
	}
	cfg.MaxCachedFile = min(cfg.MaxCachedFile, cfg.CacheBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Edge{
		meta:     cfg.Meta,
		blobs:    cfg.Blobs,
		base:     strings.Trim(strings.ToLower(cfg.BaseDomain), "."),
		maxFile:  cfg.MaxCachedFile,
		log:      cfg.Logger,
		resync:   resyncEvery,
		tlsPort:  cfg.TLSPort,
		dyn:      cfg.Dynamic,
		proxy:    newProxy(cfg.Logger, cfg.ProxyAllowPrivate, cfg.ProxyTimeout),
		routes:   routeTable{m: map[string]*route{}},
		tocs:     newLRU[string, *tocEntry](maxTOCs),
		files:    newLRU[fileKey, *file](cfg.CacheBytes),
		gzipping: make(chan struct{}, 1),
	}
}

// Observe reports the edge's caches in m at every scrape:
//
//	cairn_edge_cache_bytes, cairn_edge_cache_files (gauges: the hot-file cache)
//	cairn_edge_cache_lookups_total{cache="file|toc",result="hit|miss"}
//
// Lookups are those of the hot-file cache (file contents, zstd frames and
// gzipped forms) and of the TOC cache; a miss leads to a storage read,
// shared by concurrent misses, which looks again before it reads (that
// second look counts too).
func (e *Edge) Observe(m *metrics.Metrics) {
	m.Gauge("cairn_edge_cache_bytes", func() float64 { _, used := e.files.stats(); return float64(used) })
	m.Gauge("cairn_edge_cache_files", func() float64 { n, _ := e.files.stats(); return float64(n) })
	m.Counters(func() map[string]uint64 {
		fh, fm := e.files.lookups()
		th, tm := e.tocs.lookups()
		return map[string]uint64{
			`cairn_edge_cache_lookups_total{cache="file",result="hit"}`:  fh,
			`cairn_edge_cache_lookups_total{cache="file",result="miss"}`: fm,
			`cairn_edge_cache_lookups_total{cache="toc",result="hit"}`:   th,
			`cairn_edge_cache_lookups_total{cache="toc",result="miss"}`:  tm,
		}
	})
}

// Invalidate makes every cached route re-resolve on its next request. Call
// it after changing a pointer (activate, rollback, domain) that the
// metadata store does not announce through meta.Watcher.
func (e *Edge) Invalidate() {
	e.routes.gen.Add(1)
	if e.dyn != nil {
		e.dyn.Invalidate()
	}
}

// Run keeps routes fresh until ctx ends, then returns nil. Every signal of
// the store's Watch invalidates the routes, and they are fully resynced
// every 30 seconds in any case.
func (e *Edge) Run(ctx context.Context) error {
	changes := e.meta.Watch(ctx)
	t := time.NewTicker(e.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				changes = nil // store closed: keep the periodic resync
				continue
			}
			e.Invalidate()
		case <-t.C:
			e.Invalidate()
		}
	}
}

// ServeHTTP serves GET and HEAD requests for the static site named by the
// Host, and any request for a dynamic one (through Config.Dynamic). A
// static site answers other methods only on paths of its proxy rules.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	static := r.Method == http.MethodGet || r.Method == http.MethodHead
	host, ok := parseHost(r.Host)
	if !ok {
		if !static {
			e.notAllowed(w, r)
			return
		}
		page(w, r, http.StatusNotFound)
		return
	}
	rt, err := e.route(r.Context(), host)
	if err != nil {
		e.upstreamError(w, r, err)
		return
	}
	if rt.dynamic != "" && rt.status == 0 {
		e.serveDynamic(w, r, host, rt)
		return
	}
	if !static && (rt.status != 0 || !rt.proxy || !rt.rules.HasProxy()) {
		e.notAllowed(w, r) // other methods: only through a proxy rule
		return
	}
	if rt.status != 0 {
		page(w, r, rt.status)
		return
	}
	h := w.Header()
	if rt.httpsRedirect && r.TLS == nil {
		e.toHTTPS(w, r, host)
		return
	}
	if rt.hsts && r.TLS != nil {
		h["Strict-Transport-Security"] = hstsHdr
	}
	h["X-Cairn-Version"] = rt.hdrVersion
	h["X-Cairn-Release"] = rt.hdrRelease
	if !static {
		e.serveProxyOnly(w, r, rt)
		return
	}
	e.serve(w, r, rt)
}

func (e *Edge) notAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header()["Allow"] = allowHdr
	page(w, r, http.StatusMethodNotAllowed)
}

// Shared header values: never appended to (cap == len), so responses may
// share them.
var (
	allowHdr       = []string{"GET, HEAD"}
	acceptRanges   = []string{"bytes"}
	varyAE         = []string{"Accept-Encoding"}
	zstdHdr        = []string{"zstd"}
	cacheImmutable = []string{"public, max-age=31536000, immutable"}
	cacheRevalid   = []string{"public, max-age=0, must-revalidate"}
	cacheNoStore   = []string{"no-store"}
	hstsHdr        = []string{"max-age=31536000"} // one year; no includeSubDomains
)

// toHTTPS redirects (308) a plain HTTP request to the same URL over HTTPS.
func (e *Edge) toHTTPS(w http.ResponseWriter, r *http.Request, host string) {
	if e.tlsPort != "443" {
		host = net.JoinHostPort(host, e.tlsPort)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}
