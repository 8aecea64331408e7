package server

import (
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
	"time"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/cairnhq/cairn/internal/edge"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

// TokenFile is the name of the token file in the data dir.
const TokenFile = "token"

// Run starts the configured roles and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		cfg.Logger = log
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	store, err := openMeta(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	temps := &tempStores{}
	blobs, replicator, err := openRegions(ctx, cfg, store, temps)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sweepTemp(ctx, temps, cfg.TmpSweepInterval, cfg.TmpMaxAge, log)
	stopReplicator := startReplicator(ctx, cfg, replicator)
	defer func() { cancel(); stopReplicator() }()

	var servers []*http.Server
	var lns []net.Listener
	serving := false
	defer func() { // a failed start closes what it opened
		if !serving {
			for _, l := range lns {
				l.Close()
			}
		}
	}()
	var apiAddr, edgeAddr, bootstrap string
	if cfg.HasRole(RoleAPI) || cfg.MetricsToken {
		if bootstrap, err = loadToken(cfg); err != nil {
			return err
		}
	}
	m := metrics.New()
	metricsHandler := metricsAuth(cfg, m.Handler(), bootstrap, store, log)
	ops := func(mux *http.ServeMux) { mountHealth(mux, store, blobs, log) }
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler)
		ops(mux)
		servers, lns = append(servers, newHTTPServer(cfg.access("metrics", log, mux), log)), append(lns, ln)
	}
	var ed *edge.Edge
	if cfg.HasRole(RoleEdge) {
		ed = edge.New(edge.Config{Meta: store, Blobs: blobs, BaseDomain: cfg.BaseDomain,
			CacheBytes: cfg.CacheBytes, Logger: log.With("role", "edge")})
		ed.Observe(m)
		go ed.Run(ctx)
		ln, err := net.Listen("tcp", cfg.EdgeAddr)
		if err != nil {
			return fmt.Errorf("--edge-addr: %w", err)
		}
		edgeAddr = ln.Addr().String()
		srv := newHTTPServer(cfg.access("edge", log, m.HTTP("edge", ed)), log)
		servers, lns = append(servers, srv), append(lns, edge.Coalesce(srv, ln))
	}
	gcRunner := startGC(ctx, cfg, store, blobs, ed, m, log)
	if cfg.HasRole(RoleAPI) {
		stage := filepath.Join(cfg.DataDir, "staging")
		os.RemoveAll(stage)
		if err := os.MkdirAll(stage, 0o700); err != nil {
			return err
		}
		pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: stage, Log: log,
			Limits: release.Limits{MaxFiles: cfg.MaxFiles, MaxBytes: cfg.MaxBytes}, MaxPacks: cfg.MaxPacks}
		pub.Observe(m)
		ln, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			return fmt.Errorf("--api-addr: %w", err)
		}
		lns = append(lns, ln)
		apiAddr = ln.Addr().String()
		changed := func() {
			if ed != nil {
				ed.Invalidate()
			}
		}
		reg, err := newRegistry(cfg, store, blobs, bootstrap, apiAddr, log, changed)
		if err != nil {
			return err
		}
		go sweepUploads(ctx, reg, uploadSweepInterval, log)
		der, err := newDeriver(cfg, store, blobs, reg, log)
		if err != nil {
			return err
		}
		a := api.New(api.Config{Meta: store, Blobs: blobs, Publisher: pub, Token: bootstrap,
			GC: gcRunner, DefaultRetentionDays: &cfg.RetentionDays, Sites: cfg.sites(edgeAddr),
			Images: images(reg), Derive: der, Log: log.With("role", "api"), Changed: changed})
		servers = append(servers, newHTTPServer(cfg.access("api", log, apiHandler(reg, a, metricsHandler, m, ops)), log))
	}
	errc := make(chan error, len(servers))
	serving = true // from here the servers own their listeners
	for i, s := range servers {
		go func() { errc <- s.Serve(lns[i]) }()
	}
	log.Info("cairn serving", "api", apiAddr, "edge", edgeAddr, "data", cfg.DataDir, "roles", strings.Join(cfg.Roles, ","))
	if cfg.Ready != nil {
		cfg.Ready(apiAddr, edgeAddr)
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	for _, s := range servers {
		s.Shutdown(shut)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func openMeta(ctx context.Context, cfg Config) (meta.Store, error) {
	switch {
	case strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://"):
		s, err := postgres.Open(ctx, cfg.Database, postgres.WithLogger(cfg.Logger))
		if err != nil {
			return nil, fmt.Errorf("--database: %w", err)
		}
		return s, nil
	case cfg.Database == "" || strings.HasPrefix(cfg.Database, "sqlite://"):
		path := strings.TrimPrefix(cfg.Database, "sqlite://")
		if path == "" {
			path = filepath.Join(cfg.DataDir, "cairn.db")
		}
		s, err := sqlite.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--database: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--database: unsupported database URL %q (supported: postgres://…, sqlite://PATH, or empty for SQLite in the data dir)", redact(cfg.Database))
}

func openBlobs(ctx context.Context, cfg Config) (blob.Store, error) {
	switch {
	case strings.HasPrefix(cfg.Blobs, "s3://"):
		s, err := s3.New(ctx, cfg.Blobs)
		if err != nil {
			return nil, fmt.Errorf("--blobs: %w", err)
		}
		return s, nil
	case cfg.Blobs == "" || strings.HasPrefix(cfg.Blobs, "file://"):
		dir := strings.TrimPrefix(cfg.Blobs, "file://")
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "blobs")
		}
		s, err := fs.New(dir)
		if err != nil {
			return nil, fmt.Errorf("--blobs: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--blobs: unsupported blob store URL %q (supported: s3://BUCKET?endpoint=…&region=…, file://DIR, or empty for files in the data dir)", cfg.Blobs)
}

// redact hides a password in a URL for error messages.
func redact(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "…@" + u[i+1:]
		}
	}
	return u
}

// loadToken returns cfg.Token, else the token stored in the data dir,
// creating it (0600) on first start.
func loadToken(cfg Config) (string, error) {
	if cfg.Token != "" {
		return cfg.Token, nil
	}
	path := filepath.Join(cfg.DataDir, TokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	t := "cairn_" + hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(t + "\n"); err != nil {
		return "", err
	}
	return t, f.Sync()
}
