package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
)

// newGC builds the garbage collector that POST /v1/gc runs and, with role
// gc and a positive --gc-interval, the gc role runs periodically.
// Collections call changed (the in-process edge's invalidation) before any
// byte is deleted. A metadata store without garbage collection gives nil
// (logged): the API then answers 501 and nothing is collected. It first
// releases what dead instances of this host held (lease.ReleaseDead).
func newGC(ctx context.Context, cfg Config, store meta.Store, blobs blob.Store, changed func(), m *metrics.Metrics, log *slog.Logger) *gc.Collector {
	col, err := gc.New(gc.Config{Meta: store, Blobs: blobs, Grace: cfg.GCGrace, Drain: cfg.GCDrain,
		Metrics: m, Log: log.With("role", "gc"), Changed: changed})
	if errors.Is(err, gc.ErrUnsupported) {
		log.Warn("garbage collection disabled: the metadata store does not support it", "database", redact(cfg.Database))
		return nil
	}
	// A restart on this host ends the locks, leases and deletion claims of
	// the instance that died before (kill -9), so GC runs again at once.
	if n, err := lease.ReleaseDead(ctx, store, lease.ProcessOwner()); err != nil {
		log.Warn("gc: releasing the locks of dead processes", "err", err)
	} else if n > 0 {
		log.Info("gc: released the locks, leases and claims of dead processes", "holders", n)
	}
	return col
}

// gcRunner is col as the API's GCRunner, or nil (not a typed nil).
func gcRunner(col *gc.Collector) api.GCRunner {
	if col == nil {
		return nil
	}
	return col
}
