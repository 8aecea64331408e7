package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/edge"
	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/router"
	"github.com/cairnhq/cairn/internal/sched"
)

// process is what build assembles: the roles to supervise, in start
// order, and what to close once they have all returned.
type process struct {
	roles             []role
	closers           []func() error // closed last first
	apiAddr, edgeAddr string
	edgeTLSAddr       string
}

// close closes what build opened, last first (the stores last of all).
func (p *process) close() error {
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	return errors.Join(errs...)
}

// build opens the stores and listeners of cfg's roles and makes the role
// list. A failure closes everything opened so far.
func build(ctx context.Context, cfg Config) (p *process, err error) {
	p = &process{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return p, fmt.Errorf("--data: %w", err)
	}
	// The marker makes cairn pack and publish refuse a tree holding the
	// data directory (its token, its database).
	if err := ignore.MarkDataDir(cfg.DataDir); err != nil {
		return p, fmt.Errorf("--data: %w", err)
	}
	store, err := openMeta(ctx, cfg)
	if err != nil {
		return p, err
	}
	p.closers = append(p.closers, store.Close)
	temps := &tempStores{}
	blobs, replicator, err := openRegions(ctx, cfg, store, temps)
	if err != nil {
		return p, err
	}
	p.add(role{"temp-sweeper", func(ctx context.Context) error {
		sweepTemp(ctx, temps, cfg.TmpSweepInterval, cfg.TmpMaxAge, log)
		return nil
	}})
	if replicator != nil && cfg.HasRole(RoleAPI) {
		p.add(loopRole("replicator", func(ctx context.Context) { replicator.Run(ctx) }))
	}
	limits, err := cfg.limits(cfg.listeners())
	if err != nil {
		return p, err
	}
	var bootstrap string
	if cfg.HasRole(RoleAPI) || cfg.MetricsToken {
		if bootstrap, err = loadToken(cfg); err != nil {
			return p, err
		}
	}
	m := metrics.New()
	caps := &connCaps{m: m, l: limits}
	metricsHandler := metricsAuth(cfg, m.Handler(), bootstrap, store, log)
	ops := func(mux *http.ServeMux) { mountHealth(mux, store, blobs, log) }
	var servers []role // started after the loops, stopped before them
	if cfg.MetricsAddr != "" {
		ln, err := p.listen(cfg.MetricsAddr, "--metrics-addr")
		if err != nil {
			return p, err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler)
		ops(mux)
		srv := httplimit.Server(cfg.access("metrics", log, mux), limits, log)
		servers = append(servers, serveRole("metrics", srv, caps.listen(srv, ln, "metrics")))
	}
	var ed *edge.Edge
	if cfg.HasRole(RoleEdge) {
		var tlsLn net.Listener
		var tlsPort string
		if cfg.EdgeTLSAddr != "" {
			if tlsLn, err = p.listen(cfg.EdgeTLSAddr, "--edge-tls-addr"); err != nil {
				return p, err
			}
			p.edgeTLSAddr = tlsLn.Addr().String()
			_, tlsPort, _ = net.SplitHostPort(p.edgeTLSAddr)
		}
		rtr := router.New(router.Config{Store: store, Logger: log.With("role", "router")})
		rtr.Observe(m)
		p.add(role{"router", rtr.Run})
		ed = edge.New(edge.Config{Meta: store, Blobs: blobs, BaseDomain: cfg.BaseDomain,
			CacheBytes: cfg.CacheBytes, Logger: log.With("role", "edge"), TLSPort: tlsPort, Dynamic: rtr,
			ProxyAllowPrivate: cfg.EdgeProxyAllowPrivate, ProxyTimeout: cfg.EdgeProxyTimeout})
		ed.Observe(m)
		p.add(role{"edge-watcher", ed.Run})
		ln, err := p.listen(cfg.EdgeAddr, "--edge-addr")
		if err != nil {
			return p, err
		}
		p.edgeAddr = ln.Addr().String()
		var edgeHandler http.Handler = ed
		if tlsLn != nil {
			tlsRole, acme, err := p.edgeTLS(cfg, tlsLn, store, ed, m, limits, caps)
			if err != nil {
				return p, err
			}
			servers = append(servers, tlsRole)
			edgeHandler = acme
		}
		srv := httplimit.Server(cfg.access("edge", log, m.HTTP("edge", edgeHandler)), limits, log)
		// The cap counts the raw connections; Coalesce wraps them after it.
		servers = append(servers, serveRole("edge", srv, edge.Coalesce(srv, caps.listen(srv, ln, "edge"))))
	}
	changed := func() {
		if ed != nil {
			ed.Invalidate()
		}
	}
	var sc *sched.Scheduler
	if cfg.HasRole(RoleSched) {
		sc = &sched.Scheduler{Store: store, Leader: store, HostLostAfter: cfg.HostTimeout, PreviewIdle: cfg.PreviewIdle,
			Log: log.With("role", "sched")}
		p.add(role{"sched", sc.Run})
	}
	col, err := newGC(ctx, cfg, store, blobs, changed, m, log)
	if err != nil {
		return p, err
	}
	if cfg.HasRole(RoleGC) && cfg.GCInterval > 0 {
		p.add(loopRole("gc", func(ctx context.Context) { col.Loop(ctx, cfg.GCInterval) }))
	}
	if cfg.HasRole(RoleAPI) {
		srv, ln, err := p.apiServer(cfg, store, blobs, col, bootstrap, metricsHandler, m, ops, limits, changed, sc)
		if err != nil {
			return p, err
		}
		servers = append(servers, serveRole("api", srv, caps.listen(srv, ln, "api")))
	}
	p.roles = append(p.roles, servers...)
	p.roles = append(p.roles, cfg.testRoles...)
	return p, nil
}

// add appends a role (in start order).
func (p *process) add(r role) { p.roles = append(p.roles, r) }

// listen opens addr; a failed start closes it.
func (p *process) listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	p.closers = append(p.closers, func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return ln, nil
}

// apiServer builds the API listener's server (v1 API, registry, metrics,
// probes) and adds the registry's upload sweeper.
func (p *process) apiServer(cfg Config, store meta.Full, blobs blob.Store, col api.GCRunner, bootstrap string,
	metricsHandler http.Handler, m *metrics.Metrics, ops func(*http.ServeMux), limits httplimit.Limits,
	changed func(), sc *sched.Scheduler) (*http.Server, net.Listener, error) {
	log := cfg.Logger
	stage := filepath.Join(cfg.DataDir, "staging")
	os.RemoveAll(stage)
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, nil, err
	}
	pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: stage, Log: log,
		Limits: release.Limits{MaxFiles: cfg.MaxFiles, MaxBytes: cfg.MaxBytes}, MaxPacks: cfg.MaxPacks}
	pub.Observe(m)
	ln, err := p.listen(cfg.APIAddr, "--api-addr")
	if err != nil {
		return nil, nil, err
	}
	p.apiAddr = ln.Addr().String()
	reg, err := newRegistry(cfg, store, blobs, bootstrap, p.apiAddr, log, changed)
	if err != nil {
		return nil, nil, err
	}
	p.add(loopRole("upload-sweeper", func(ctx context.Context) { sweepUploads(ctx, reg, uploadSweepInterval, log) }))
	der, err := newDeriver(cfg, store, blobs, reg, log)
	if err != nil {
		return nil, nil, err
	}
	a := api.New(api.Config{Meta: store, Blobs: blobs, Publisher: pub, Token: bootstrap,
		GC: col, DefaultRetentionDays: &cfg.RetentionDays, Sites: cfg.sites(p.edgeAddr, p.edgeTLSAddr),
		Images: reg, Derive: der, Hosts: store, HostTimeout: cfg.HostTimeout, Log: log.With("role", "api"), Changed: changed,
		Sched: store, RolloutTimeout: cfg.RolloutTimeout, Kick: kickOf(sc), Builds: store})
	if sc != nil {
		// An oci version runs from its rootfs, derived by the API on
		// demand: a scheduler next to an API places oci deployments.
		sc.Runnable = a.Runnable
	}
	return httplimit.Server(cfg.access("api", log, apiHandler(reg, a, metricsHandler, m, ops)), limits, log), ln, nil
}

// kickOf is sc's Kick, or nil without a scheduler in this process.
func kickOf(sc *sched.Scheduler) func() {
	if sc == nil {
		return nil
	}
	return sc.Kick
}
