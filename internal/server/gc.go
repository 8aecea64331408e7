package server

import (
	"context"
	"log/slog"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/metrics"
)

// newGC builds the garbage collector that POST /v1/gc runs and, with role
// gc and a positive --gc-interval, the gc role runs periodically.
// Collections call changed (the in-process edge's invalidation) before any
// byte is deleted. It first releases what dead instances of this host held
// (lease.ReleaseDead).
func newGC(ctx context.Context, cfg Config, store gc.Store, blobs blob.Store, changed func(), m *metrics.Metrics, log *slog.Logger) (*gc.Collector, error) {
	// Several regions (openRegions): the orphan sweep lists the copies
	// the primary's List does not read.
	strays, _ := blobs.(blob.StrayLister)
	col, err := gc.New(gc.Config{Meta: store, Blobs: blobs, Strays: strays, Grace: cfg.GCGrace, Drain: cfg.GCDrain,
		Metrics: m, Log: log.With("role", "gc"), Changed: changed})
	if err != nil {
		return nil, err
	}
	// A restart on this host ends the locks, leases and deletion claims of
	// the instance that died before (kill -9), so GC runs again at once.
	if n, err := lease.ReleaseDead(ctx, store, lease.ProcessOwner()); err != nil {
		log.Warn("gc: releasing the locks of dead processes", "err", err)
	} else if n > 0 {
		log.Info("gc: released the locks, leases and claims of dead processes", "holders", n)
	}
	return col, nil
}
