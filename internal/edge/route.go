package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// route is what a host resolved to at one generation: a release and its
// TOC, or a status (404, 410) when there is nothing to serve. Immutable.
type route struct {
	gen    uint64
	status int // 0: serve; else the status of the error page
	// dynamic is the version id of a dynamic deployment's route, served
	// by Config.Dynamic ("": a static release, the fields below).
	dynamic string
	depID   string
	active  bool

	sha        string // release sha256
	toc        *release.TOC
	rr         release.RangeReader
	entrypoint string
	cache      []string // Cache-Control of file responses

	// The site's own rules (_redirects, _headers; nil: none) and settings.
	// site is set when any of them is, and sends requests down the
	// slower path of serveSite.
	rules     *siterules.Rules
	spa       bool
	cleanURLs bool
	proxy     bool // proxy_rewrites: proxy rules are proxied
	site      bool
	// A custom domain's HTTPS settings (meta.Domain).
	httpsRedirect, hsts bool
	hdrVersion          []string // X-Cairn-Version
	hdrRelease          []string // X-Cairn-Release
}

// routeTable caches routes by host. An entry is fresh while its gen is the
// table's; Invalidate bumps the table's gen.
type routeTable struct {
	gen atomic.Uint64
	mu  sync.RWMutex
	m   map[string]*route
	fl  flight[routeKey, *route]
}

type routeKey struct {
	host string
	gen  uint64
}

// tocEntry is a cached TOC with the reader of its artifact.
type tocEntry struct {
	toc   *release.TOC
	rr    release.RangeReader
	rules *siterules.Rules // compiled once per release; nil: none
	files bool             // the release has a _redirects or _headers
}

// errNoSite: the host names nothing servable (404).
var errNoSite = errors.New("edge: no site")

// route returns the fresh route of host, resolving it (once for all
// concurrent requests of the same host and generation) when needed.
// Storage and metadata failures are returned as errors and not cached.
func (e *Edge) route(ctx context.Context, host string) (*route, error) {
	t := &e.routes
	gen := t.gen.Load()
	t.mu.RLock()
	rt := t.m[host]
	t.mu.RUnlock()
	if rt != nil && rt.gen == gen {
		return rt, nil
	}
	return t.fl.do(ctx, routeKey{host, gen}, func(ctx context.Context) (*route, error) {
		t.mu.RLock()
		rt := t.m[host]
		t.mu.RUnlock()
		if rt != nil && rt.gen == gen { // resolved by a flight that just ended
			return rt, nil
		}
		rt, err := e.resolve(ctx, host, gen)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		if len(t.m) >= maxRoutes {
			clear(t.m) // hosts come from clients: keep the table bounded
		}
		if old := t.m[host]; old == nil || old.gen <= gen {
			t.m[host] = rt
		}
		t.mu.Unlock()
		return rt, nil
	})
}

// resolve looks host up in the metadata store and loads the TOC.
func (e *Edge) resolve(ctx context.Context, host string, gen uint64) (*route, error) {
	v, dep, dom, preview, err := e.findVersion(ctx, host)
	switch {
	case errors.Is(err, meta.ErrNotFound) || errors.Is(err, errNoSite):
		return &route{gen: gen, status: http.StatusNotFound}, nil
	case err != nil:
		return nil, err
	case v.Status == meta.StatusCollected || v.CollectedAt != nil:
		return &route{gen: gen, status: http.StatusGone}, nil
	case dep.Kind != meta.KindStatic:
		rt := &route{gen: gen, dynamic: v.ID, depID: dep.ID,
			active: dep.ActiveVersionID != nil && *dep.ActiveVersionID == v.ID}
		if dom != nil {
			rt.httpsRedirect, rt.hsts = dom.HTTPSRedirect && e.tlsPort != "", dom.HSTS
		}
		return rt, nil
	}
	rel, err := e.meta.GetRelease(ctx, v.ArtifactSHA256)
	switch {
	case err != nil:
		return nil, fmt.Errorf("release of version %s: %w", v.ID, err)
	case rel.CollectedAt != nil:
		return &route{gen: gen, status: http.StatusGone}, nil
	case rel.Kind != meta.KindStatic:
		return &route{gen: gen, status: http.StatusNotFound}, nil
	}
	te, err := e.loadTOC(ctx, rel)
	if err != nil {
		return nil, err
	}
	rt := &route{gen: gen, sha: rel.SHA256, toc: te.toc, rr: te.rr, depID: dep.ID, proxy: dep.ProxyRewrites,
		entrypoint: v.ArtifactManifest.Entrypoint, cache: cacheRevalid,
		hdrVersion: []string{v.ID}, hdrRelease: []string{rel.SHA256},
		rules: te.rules, spa: dep.SPA, cleanURLs: dep.CleanURLs}
	rt.site = te.files || rt.spa || rt.cleanURLs
	if dom != nil {
		rt.httpsRedirect, rt.hsts = dom.HTTPSRedirect && e.tlsPort != "", dom.HSTS
	}
	if rt.entrypoint = path.Clean("/" + rt.entrypoint)[1:]; rt.entrypoint == "" {
		rt.entrypoint = "index.html"
	}
	if preview {
		rt.cache = cacheImmutable
	}
	e.log.Debug("edge: route loaded", "host", host, "version", v.ID, "version_number", v.VersionNumber,
		"release", rel.SHA256, "files", len(te.toc.Entries), "preview", preview)
	return rt, nil
}

// findVersion maps a host to the version it serves and its deployment;
// preview reports a
// {name}--v{N} host. Nothing to serve: an error wrapping meta.ErrNotFound
// or errNoSite.
func (e *Edge) findVersion(ctx context.Context, host string) (v *meta.Version, dep *meta.Deployment, dom *meta.Domain, preview bool, err error) {
	if name, n, ok := siteLabel(host, e.base); ok {
		if dep, err = e.meta.GetDeployment(ctx, name); err != nil {
			return nil, nil, nil, false, err
		}
		if dep.DeletedAt != nil || dep.Kind != meta.KindStatic && e.dyn == nil { // deleted: previews stop too
			return nil, nil, nil, false, errNoSite
		}
		if n > 0 {
			v, err = e.meta.GetVersionByNumber(ctx, dep.ID, n)
			return v, dep, nil, true, err
		}
	} else {
		if dom, err = e.meta.GetDomain(ctx, host); err != nil {
			return nil, nil, nil, false, err
		}
		if dep, err = e.meta.GetDeployment(ctx, dom.DeploymentID); err != nil {
			return nil, nil, nil, false, err
		}
		if dep.DeletedAt != nil || dep.Kind != meta.KindStatic && e.dyn == nil {
			return nil, nil, nil, false, errNoSite
		}
		if dom.VersionID != nil {
			v, err = e.meta.GetVersion(ctx, *dom.VersionID)
			return v, dep, dom, false, err
		}
	}
	if dep.ActiveVersionID == nil {
		return nil, nil, nil, false, errNoSite
	}
	v, err = e.meta.GetVersion(ctx, *dep.ActiveVersionID)
	return v, dep, dom, false, err
}

// loadTOC returns the cached TOC of rel, reading it (two ranged reads) on
// a miss. TOCs are immutable, so they are kept until evicted by count.
func (e *Edge) loadTOC(ctx context.Context, rel *meta.Release) (*tocEntry, error) {
	if te, ok := e.tocs.get(rel.SHA256); ok {
		return te, nil
	}
	return e.tocFl.do(ctx, rel.SHA256, func(ctx context.Context) (*tocEntry, error) {
		if te, ok := e.tocs.get(rel.SHA256); ok {
			return te, nil
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, rel.SHA256)
		rr := release.RangeFunc(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			return e.blobs.Open(ctx, d, off, n)
		})
		size := rel.SizeBytes
		if size <= 0 {
			info, err := e.blobs.Stat(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("stat release %s: %w", rel.SHA256, err)
			}
			size = info.Size
		}
		toc, err := release.ReadTOC(ctx, rr, size)
		if err != nil {
			return nil, fmt.Errorf("TOC of release %s: %w", rel.SHA256, err)
		}
		te := &tocEntry{toc: toc, rr: rr}
		if err := e.loadRules(ctx, rel.SHA256, te); err != nil {
			return nil, err
		}
		e.tocs.add(rel.SHA256, te, 1)
		return te, nil
	})
}
