package server

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/registry"
)

// newRegistry builds the OCI registry served at /v2/ on the API listener.
func newRegistry(cfg Config, store registry.Store, blobs blob.Store, token, host string, log *slog.Logger, changed func()) (*registry.Registry, error) {
	return registry.New(registry.Config{Meta: store, Blobs: blobs, Token: token, Host: host,
		StageDir: filepath.Join(cfg.DataDir, "registry-uploads"), MaxUploads: cfg.MaxUploads,
		Log: log.With("role", "registry"), Changed: changed})
}

// apiHandler serves reg at /v2/, the metrics at /metrics (with
// metricsHandler), the probes at /healthz and /readyz (ops) and everything
// else with api, counting every request in m.
func apiHandler(reg *registry.Registry, api, metricsHandler http.Handler, m *metrics.Metrics, ops func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/metrics", metricsHandler)
	ops(mux)
	mux.Handle("/", api)
	return m.HTTP("api", mux)
}

// uploadSweepInterval is how often expired upload sessions are removed.
const uploadSweepInterval = 10 * time.Minute

// sweepUploads removes expired upload sessions of reg now and every
// interval until ctx ends.
func sweepUploads(ctx context.Context, reg *registry.Registry, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := reg.SweepUploads(ctx); err != nil && ctx.Err() == nil {
			log.Warn("registry: sweeping upload sessions", "err", err)
		} else if n > 0 {
			log.Info("registry: expired upload sessions removed", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
