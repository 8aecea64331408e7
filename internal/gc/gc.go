// Package gc collects releases that nobody may roll back to any more and
// deletes their bytes while the system keeps serving.
//
// A run finds the roots of every release (meta.GCSnapshot.Roots: leases,
// registry references, active and pinned versions, keep_versions, the
// retention window), then:
//
//  1. marks each unrooted release "collecting", in a transaction that
//     re-checks its roots;
//  2. once a release has stayed marked for the grace period (this run when
//     the grace is 0, else a later run), collects it in ONE transaction that
//     re-checks the roots: the release and its versions get collected_at,
//     the versions status "collected" and a "collect" event each, and a
//     deletion claim is recorded; a root found instead cancels the
//     collection (the mark is cleared);
//  3. tells the edge (Changed), waits Drain so requests already being served
//     finish, deletes the bytes and drops the claim;
//  4. sweeps orphans: blobs with no release row or a collected one, seen as
//     orphans for longer than the grace period, are claimed and deleted.
//
// Before marking, the OCI registry is collected (oci.go, meta.OCIGC): its
// rows are kept while reachable from a root (a rooted version's manifest, a
// tagged manifest, a manifest or blob link stored within the grace period,
// a leased digest) through configs, layers, index children and referrers.
// The other rows are deleted in one transaction that re-checks the registry
// and the roots; a manifest that is a release goes through the same two
// phases (marked, collected after the grace period, 410 for its versions),
// and the bytes left without a row are deleted by the orphan sweep.
//
// Publishers take a lease (Hold) on a sha256 before storing its bytes and
// drop it after the version is committed: a lease is a root, and Hold waits
// while a deletion claim is held, so bytes are stored again only after a
// concurrent delete finished. Only one run at a time holds the lock
// LockName, across processes sharing the metadata store; the lock is tied
// to the live process that runs (an owner id and a heartbeat, lock.go).
package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
)

// Timing constants. The default grace period (an hour) must stay longer
// than lease.TTL.
const (
	LockName     = "gc"             // the runner lock in the metadata store
	LockTTL      = 30 * time.Second // renewed by the run's heartbeat (lock.go)
	Heartbeat    = 10 * time.Second // between renewals of the runner lock
	ClaimTTL     = 2 * time.Minute  // a deletion claim, beyond Drain
	claimMargin  = 15 * time.Second // deletions stop this long before their claims expire
	DefaultGrace = time.Hour
	markBatch    = 64 // releases marked per transaction
	collectBatch = 32 // releases collected per transaction
)

var (
	// ErrBusy: another run holds the lock.
	ErrBusy = errors.New("gc: another collection is running")
)

// Store is what the collector needs of the metadata store: the records,
// the collection and registry collection queries, and the leases (for
// releasing the locks of dead processes).
type Store interface {
	meta.Store
	meta.GC
	meta.OCIGC
	meta.Leases
}

// Config configures a Collector. Meta and Blobs are required.
type Config struct {
	Meta  Store
	Blobs blob.Store
	// Strays, if set, lists the copies Blobs keeps beyond what its List
	// reads (a multi-region replica.Store), for the orphan sweep.
	Strays blob.StrayLister
	// Grace is how long a release stays marked before it may be collected,
	// and how long a blob must be seen as an orphan before it is deleted.
	Grace time.Duration
	// Drain is the wait between committing collections and deleting their
	// bytes, so that requests already reading them finish.
	Drain time.Duration
	// Now is the clock of every decision (default time.Now); the store's
	// clock must agree with it.
	Now func() time.Time
	// Changed, if set, is called after collections commit and before any
	// byte is deleted (e.g. to invalidate an in-process edge's routes).
	Changed func()
	Log     *slog.Logger
	// Metrics, if set, counts runs (not dry runs) and what they collect.
	Metrics *metrics.Metrics
	// Owner names this process instance in the runner lock, "HOST/PID/NONCE"
	// (default lease.ProcessOwner(); see lock.go).
	Owner string
	// Heartbeat is the time between renewals of the runner lock while a run
	// lasts (default Heartbeat; tests shorten it). It must be well under
	// LockTTL.
	Heartbeat time.Duration
}

// Collector runs collections. It is safe for concurrent use; concurrent
// runs exclude each other through the lock (ErrBusy).
type Collector struct {
	cfg Config
	g   meta.GC
}

// New returns a Collector; an error if cfg.Owner is not an owner id.
func New(cfg Config) (*Collector, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	if cfg.Owner == "" {
		cfg.Owner = lease.ProcessOwner()
	}
	if !lease.ValidOwner(cfg.Owner) {
		return nil, fmt.Errorf("gc: owner %q is not HOST/PID/NONCE", cfg.Owner)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = Heartbeat
	}
	return &Collector{cfg: cfg, g: cfg.Meta}, nil
}

// Loop runs a collection every interval (the first one after at most a
// minute) until ctx ends. A run going on elsewhere (ErrBusy) is skipped;
// failures are logged.
func (c *Collector) Loop(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(min(interval, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(interval)
		}
		rep, err := c.Run(ctx, false)
		switch {
		case errors.Is(err, ErrBusy) || ctx.Err() != nil:
		case err != nil:
			c.cfg.Log.Error("gc run failed", "err", err)
		default:
			tt := rep.Totals
			c.cfg.Log.Info("gc run", "collected", tt.ReleasesCollected, "versions", tt.VersionsCollected,
				"bytes_freed", tt.BytesFreed+tt.OrphanBytesFreed, "marked", tt.ReleasesMarked,
				"cancelled", tt.ReleasesCancelled, "kept", tt.ReleasesKept, "orphans", tt.OrphansDeleted,
				"duration_ms", rep.FinishedAt.Sub(rep.StartedAt).Milliseconds())
		}
	}
}

// renew extends the run's lock between phases (the heartbeat renews it
// meanwhile); losing it aborts the run.
func (r *run) renew(ctx context.Context) error {
	ok, err := r.c.g.AcquireLock(ctx, LockName, r.holder, LockTTL)
	if err == nil && !ok {
		err = errLost
	}
	return err
}

// sleep waits d of real time, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
