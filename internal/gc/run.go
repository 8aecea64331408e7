package gc

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// run is the state of one collection.
type run struct {
	c        *Collector
	holder   string // of the lock and the deletion claims: one per run
	dry      bool
	now      time.Time
	rep      *Report
	snap     *meta.GCSnapshot
	releases map[string]*meta.GCRelease
	versions map[string][]VersionRef // by sha256, versions not collected
	due      []string                // marked for the grace period: collect now
	deleted  map[string]bool         // sha256s whose blob this run deleted
	// the registry (oci.go): releases that are registry manifests, which the
	// mark phase leaves to it, and the releases it collected
	ociHandled  map[string]bool
	ociDone     []*Collected
	ociDeadline time.Time
}

// Run runs one collection and reports it. A dry run takes no lock and
// changes nothing: it reports what a run at this moment would do. Another
// run holding the lock: ErrBusy.
func (c *Collector) Run(ctx context.Context, dryRun bool) (rep *Report, err error) {
	if !dryRun {
		defer func(start time.Time) { c.observe(rep, err, start) }(time.Now())
	}
	r := &run{c: c, holder: c.cfg.Owner + "/gc-" + randomID(), dry: dryRun, now: c.cfg.Now(), deleted: map[string]bool{}}
	r.rep = newReport(dryRun, r.now, c.cfg.Grace)
	if !dryRun {
		ok, err := c.acquire(ctx, r.holder)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrBusy
		}
		defer c.g.ReleaseLock(context.WithoutCancel(ctx), LockName, r.holder)
		var stop func()
		ctx, stop = c.heartbeat(ctx, r.holder)
		defer stop() // before the lock is released
		if err := c.g.PruneLeases(ctx, r.now); err != nil {
			return nil, err
		}
	}
	for _, phase := range []func(context.Context) error{r.load, r.oci, r.mark, r.collect, r.orphans} {
		if err := phase(ctx); err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errLost) {
				err = cause // the lock was lost: say so rather than "cancelled"
			}
			return nil, err
		}
		if !dryRun {
			if err := r.renew(ctx); err != nil {
				return nil, err
			}
		}
	}
	r.rep.FinishedAt = c.cfg.Now()
	r.rep.total()
	return r.rep, nil
}

// observe counts a run in the metrics:
//
//	cairn_gc_runs_total{result="ok|busy|error"}
//	cairn_gc_run_duration_seconds (histogram)
//	cairn_gc_releases_collected_total, cairn_gc_versions_collected_total,
//	cairn_gc_orphans_deleted_total, cairn_gc_bytes_freed_total
func (c *Collector) observe(rep *Report, err error, start time.Time) {
	m := c.cfg.Metrics
	switch {
	case errors.Is(err, ErrBusy):
		m.Inc(`cairn_gc_runs_total{result="busy"}`)
		return
	case err != nil:
		m.Inc(`cairn_gc_runs_total{result="error"}`)
		return
	}
	m.Inc(`cairn_gc_runs_total{result="ok"}`)
	m.Since("cairn_gc_run_duration_seconds", start)
	t := rep.Totals
	m.Add("cairn_gc_releases_collected_total", int64(t.ReleasesCollected))
	m.Add("cairn_gc_versions_collected_total", int64(t.VersionsCollected))
	m.Add("cairn_gc_orphans_deleted_total", int64(t.OrphansDeleted))
	m.Add("cairn_gc_bytes_freed_total", t.BytesFreed+t.OrphanBytesFreed)
}

// load reads the snapshot and indexes its releases and versions.
func (r *run) load(ctx context.Context) error {
	snap, err := r.c.g.GCSnapshot(ctx, r.now)
	if err != nil {
		return err
	}
	r.snap = snap
	r.releases = map[string]*meta.GCRelease{}
	for i := range snap.Releases {
		r.releases[snap.Releases[i].SHA256] = &snap.Releases[i]
	}
	r.versions = map[string][]VersionRef{}
	for _, v := range snap.Versions {
		r.versions[v.SHA256] = append(r.versions[v.SHA256], VersionRef{v.DeploymentID, v.ID, v.VersionNumber})
	}
	return nil
}

// mark applies the plan (plan.go): reports the kept and waiting releases,
// queues the due ones for collect, and marks the unrooted ones not marked
// yet (unmarking marked ones a root reached again) in batches.
func (r *run) mark(ctx context.Context) error {
	p := plan(r.snap, r.now, r.c.cfg.Grace, r.ociHandled)
	r.rep.Kept = append(r.rep.Kept, p.Kept...)
	for _, sha := range p.Waiting {
		r.marked(sha, *r.releases[sha].CollectingAt)
	}
	r.due = append(r.due, p.Due...)
	// Unmarking and marking are one store call: it marks what is still
	// unrooted in its transaction and unmarks what a root reaches there.
	roots := p.Roots
	toMark := append(append([]string{}, p.Unmark...), p.Mark...)
	wasMarked := map[string]bool{}
	for _, sha := range p.Unmark {
		wasMarked[sha] = true
	}
	r.byDeployment(toMark)
	for len(toMark) > 0 {
		batch := toMark[:min(markBatch, len(toMark))]
		toMark = toMark[len(batch):]
		kept := map[string]meta.Root{}
		if r.dry {
			for _, sha := range batch {
				if root, ok := roots[sha]; ok {
					kept[sha] = root
				}
			}
		} else {
			var err error
			if kept, err = r.c.g.MarkCollecting(ctx, batch, r.now); err != nil {
				return err
			}
		}
		for _, sha := range batch {
			switch root, ok := kept[sha]; {
			case ok && wasMarked[sha]:
				r.rep.Cancelled = append(r.rep.Cancelled, Kept{sha, root})
				r.rep.Kept = append(r.rep.Kept, Kept{sha, root})
			case ok:
				r.rep.Kept = append(r.rep.Kept, Kept{sha, root})
			case r.c.cfg.Grace <= 0:
				r.due = append(r.due, sha)
			default:
				r.marked(sha, r.now)
			}
		}
	}
	return nil
}

// byDeployment sorts shas by the first deployment referencing them, so that
// a batch's releases share deployments (and their store-side lookups).
func (r *run) byDeployment(shas []string) {
	key := func(sha string) string {
		if vs := r.versions[sha]; len(vs) > 0 {
			return vs[0].DeploymentID + "/" + sha
		}
		return "/" + sha
	}
	sort.Slice(shas, func(i, j int) bool { return key(shas[i]) < key(shas[j]) })
}

func (r *run) marked(sha string, at time.Time) {
	rel := r.releases[sha]
	r.rep.Marked = append(r.rep.Marked, Marked{SHA256: sha, SizeBytes: rel.SizeBytes, MarkedAt: at,
		CollectableAt: at.Add(r.c.cfg.Grace), Versions: r.refs(sha)})
}

func (r *run) refs(sha string) []VersionRef {
	if vs := r.versions[sha]; vs != nil {
		return vs
	}
	return []VersionRef{}
}

// collect collects the due releases, collectBatch per transaction, then,
// after Changed and Drain, deletes their bytes while the deletion claims
// last (what is left is deleted by a later orphan sweep).
func (r *run) collect(ctx context.Context) error {
	done := r.ociDone         // the registry's collections come first
	deadline := r.ociDeadline // real time: the first claim's expiry, less a margin
	defer func() {            // claims end with the run, also a failed one
		if len(done) == 0 {
			return
		}
		shas := make([]string, len(done))
		for i, c := range done {
			shas[i] = c.SHA256
		}
		if err := r.c.g.DropClaims(context.WithoutCancel(ctx), r.holder, shas...); err != nil {
			r.c.cfg.Log.Error("gc: dropping deletion claims", "err", err)
		}
	}()
	r.byDeployment(r.due)
	for len(r.due) > 0 {
		batch := r.due[:min(collectBatch, len(r.due))]
		r.due = r.due[len(batch):]
		if r.dry {
			for _, sha := range batch {
				rel := r.releases[sha]
				r.rep.Collected = append(r.rep.Collected, Collected{SHA256: sha, Kind: rel.Kind,
					SizeBytes: rel.SizeBytes, Versions: r.refs(sha), BytesFreed: rel.SizeBytes})
			}
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(r.c.cfg.Drain + ClaimTTL - claimMargin)
		}
		cs, err := r.c.g.CollectReleases(ctx, batch, r.now.Add(-r.c.cfg.Grace), r.now, r.holder, r.c.cfg.Drain+ClaimTTL)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Root != nil {
				r.rep.Cancelled = append(r.rep.Cancelled, Kept{c.SHA256, *c.Root})
				r.rep.Kept = append(r.rep.Kept, Kept{c.SHA256, *c.Root})
				continue
			}
			rel := r.releases[c.SHA256]
			col := &Collected{SHA256: c.SHA256, Kind: rel.Kind, SizeBytes: rel.SizeBytes, Versions: []VersionRef{}}
			for _, v := range c.Versions {
				col.Versions = append(col.Versions, VersionRef{v.DeploymentID, v.ID, v.VersionNumber})
			}
			done = append(done, col)
		}
	}
	if len(done) == 0 {
		return nil
	}
	r.c.cfg.Changed()
	if err := sleep(ctx, r.c.cfg.Drain); err != nil {
		return err
	}
	for _, c := range done {
		c.BytesFreed, c.Deleted = r.deleteBlob(ctx, c.SHA256, deadline)
		r.rep.Collected = append(r.rep.Collected, *c)
	}
	return nil
}
