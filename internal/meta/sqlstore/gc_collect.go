package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// rootFinder finds roots inside one write transaction that holds lockRoots
// of every release it is asked about. It caches what several releases of a
// batch share (deployments, the versions ranked for keep_versions);
// collected removes a version the transaction collected from the ranking.
type rootFinder struct {
	s      *Store
	tx     *wtx
	now    time.Time
	deps   map[string][]meta.GCDeployment // id → the deployment (none: not found)
	ranked map[string][]meta.GCVersion    // deployment with keep_versions → its versions
}

func (s *Store) rootFinder(tx *wtx, now time.Time) *rootFinder {
	return &rootFinder{s: s, tx: tx, now: now, deps: map[string][]meta.GCDeployment{}, ranked: map[string][]meta.GCVersion{}}
}

func (f *rootFinder) collected(v *meta.Version) {
	vs := f.ranked[v.DeploymentID]
	for i := range vs {
		if vs[i].ID == v.ID {
			f.ranked[v.DeploymentID] = append(vs[:i:i], vs[i+1:]...)
			return
		}
	}
}

// rootOf finds the strongest root of release sha from the rows that can
// hold it: its leases, the registry, the versions that reference it, their
// deployments and, for keep_versions, the other versions of those
// deployments. nil: unrooted.
func (f *rootFinder) rootOf(ctx context.Context, sha string) (*meta.Root, error) {
	s, tx := f.s, f.tx
	var leased bool
	if err := tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM release_leases
		WHERE sha256 = ? AND purpose = ? AND expires_at > ?)`), sha, purposeUse, f.now.UnixNano()).Scan(&leased); err != nil {
		return nil, err
	}
	if leased {
		return &meta.Root{Reason: meta.RootLease}, nil
	}
	if ext, err := s.registryRefers(ctx, tx, sha); err != nil || ext {
		return &meta.Root{Reason: meta.RootRegistry}, err
	}
	// A derived artifact is rooted by the versions of what it derives from.
	edges, srcs, err := s.sources(ctx, tx, []string{sha})
	if err != nil {
		return nil, err
	}
	var mine []meta.GCVersion
	for _, x := range append([]string{sha}, srcs...) {
		if err := s.gcVersions(ctx, tx, &mine, `artifact_sha256 = ? AND collected_at IS NULL`, x); err != nil {
			return nil, err
		}
	}
	snap := &meta.GCSnapshot{Derived: edges}
	seen := map[string]bool{}
	for _, v := range mine {
		if seen[v.DeploymentID] {
			continue
		}
		seen[v.DeploymentID] = true
		d, ok := f.deps[v.DeploymentID]
		if !ok {
			if err := s.gcDeployments(ctx, tx, &d, `id = ?`, v.DeploymentID); err != nil {
				return nil, err
			}
			f.deps[v.DeploymentID] = d
		}
		snap.Deployments = append(snap.Deployments, d...)
		if len(d) == 0 || d[0].KeepVersions == 0 {
			for _, w := range mine {
				if w.DeploymentID == v.DeploymentID {
					snap.Versions = append(snap.Versions, w)
				}
			}
			continue
		}
		vs, ok := f.ranked[v.DeploymentID]
		if !ok { // the ranking needs every version of the deployment
			if err := s.gcVersions(ctx, tx, &vs, `deployment_id = ? AND collected_at IS NULL`, v.DeploymentID); err != nil {
				return nil, err
			}
			f.ranked[v.DeploymentID] = vs
		}
		snap.Versions = append(snap.Versions, vs...)
	}
	if err := f.addSources(ctx, snap, sha); err != nil {
		return nil, err
	}
	if r, ok := snap.Roots(f.now)[sha]; ok {
		return &r, nil
	}
	return nil, nil
}

// addSources adds to snap what roots sha as a source snapshot or as a
// builder: the versions with sha as their snapshot, the succeeded builds
// that ran sha as their builder and the versions of their snapshots, and
// those versions' deployments.
func (f *rootFinder) addSources(ctx context.Context, snap *meta.GCSnapshot, sha string) error {
	s, tx := f.s, f.tx
	var err error
	if snap.Building, err = s.gcBuilding(ctx, tx, sha); err != nil {
		return err
	}
	if snap.Builders, err = s.gcBuilders(ctx, tx, sha); err != nil {
		return err
	}
	for _, x := range append([]string{sha}, sourcesOf(snap.Builders)...) {
		vs, err := s.gcSources(ctx, tx, x)
		if err != nil {
			return err
		}
		snap.Sources = append(snap.Sources, vs...)
	}
	have := map[string]bool{}
	for _, d := range snap.Deployments {
		have[d.ID] = true
	}
	for _, v := range snap.Sources {
		if have[v.DeploymentID] {
			continue
		}
		have[v.DeploymentID] = true
		d, ok := f.deps[v.DeploymentID]
		if !ok {
			if err := s.gcDeployments(ctx, tx, &d, `id = ?`, v.DeploymentID); err != nil {
				return err
			}
			f.deps[v.DeploymentID] = d
		}
		snap.Deployments = append(snap.Deployments, d...)
	}
	return nil
}

func sourcesOf(bs []meta.GCBuilder) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Source)
	}
	return out
}

// MarkCollecting marks each unrooted release of shas collecting at now and
// unmarks the rooted ones, in one transaction holding their lockRoots; it
// returns their roots.
func (s *Store) MarkCollecting(ctx context.Context, shas []string, now time.Time) (map[string]meta.Root, error) {
	kept := map[string]meta.Root{}
	err := s.update(ctx, func(tx *wtx) error {
		clear(kept)
		if err := s.lockRootsWithSources(ctx, tx, shas); err != nil {
			return err
		}
		f := s.rootFinder(tx, now)
		for _, sha := range shas {
			r, err := f.rootOf(ctx, sha)
			if err != nil {
				return err
			}
			mark := any(now.UnixNano())
			if r != nil {
				kept[sha], mark = *r, nil
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = ?
				WHERE sha256 = ? AND collected_at IS NULL`), mark, sha); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("mark releases collecting", err)
	}
	return kept, nil
}

// CollectReleases is the second phase of a collection: see meta.GC. It
// holds the lockRoots of shas, so its decisions stand until it commits;
// its "collect" events notify every process's watchers on commit.
func (s *Store) CollectReleases(ctx context.Context, shas []string, markedBefore, now time.Time, holder string, ttl time.Duration) ([]meta.Collection, error) {
	var out []meta.Collection
	err := s.update(ctx, func(tx *wtx) error {
		out = nil
		if err := s.lockRootsWithSources(ctx, tx, shas); err != nil {
			return err
		}
		f := s.rootFinder(tx, now)
		for _, sha := range shas {
			c, err := s.collect(ctx, f, sha, markedBefore, holder, now.Add(ttl))
			if err != nil {
				return err
			}
			if c != nil {
				out = append(out, *c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("collect releases", err)
	}
	return out, nil
}

// collect collects (or cancels the collection of) one release inside f.tx;
// nil: skipped.
func (s *Store) collect(ctx context.Context, f *rootFinder, sha string, markedBefore time.Time, holder string, until time.Time) (*meta.Collection, error) {
	tx, at := f.tx, fromNanos(f.now.UnixNano())
	var (
		size                  int64
		collected, collecting *int64
	)
	err := tx.QueryRowContext(ctx, s.q(`SELECT size_bytes, collected_at, collecting_at FROM releases WHERE sha256 = ?`),
		sha).Scan(&size, &collected, &collecting)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case collected != nil || collecting == nil || *collecting > markedBefore.UnixNano():
		return nil, nil
	}
	root, err := f.rootOf(ctx, sha)
	if err != nil || root != nil {
		if err == nil {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = NULL WHERE sha256 = ?`), sha)
		}
		return &meta.Collection{SHA256: sha, Root: root}, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = ?, collecting_at = NULL
		WHERE sha256 = ?`), at.UnixNano(), sha); err != nil {
		return nil, err
	}
	// The content index names only releases that are stored (0017).
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM contents WHERE release_sha256 = ?`), sha); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT `+versionCols+` FROM versions
		WHERE artifact_sha256 = ? AND collected_at IS NULL ORDER BY deployment_id, version_number`), sha)
	if err != nil {
		return nil, err
	}
	vs, err := collectRows(rows, func(r scanner) (meta.Version, error) {
		v, err := scanVersion(r)
		if err != nil {
			return meta.Version{}, err
		}
		return *v, nil
	})
	if err != nil {
		return nil, err
	}
	c := &meta.Collection{SHA256: sha, Versions: append([]meta.Version{}, vs...)}
	for i := range c.Versions {
		v := &c.Versions[i]
		v.Status, v.CollectedAt = meta.StatusCollected, &at
		f.collected(v)
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, collected_at = ? WHERE id = ?`),
			meta.StatusCollected, at.UnixNano(), v.ID); err != nil {
			return nil, err
		}
		if err := s.appendEvent(ctx, tx, meta.Event{
			At: s.stamp(), Actor: "gc", Action: meta.ActionCollect, DeploymentID: v.DeploymentID,
			VersionID: v.ID, ReleaseSHA256: sha,
		}, map[string]any{"version_number": v.VersionNumber, "collected_at": at, "size_bytes": size}); err != nil {
			return nil, err
		}
	}
	return c, s.claim(ctx, tx, sha, holder, until)
}

// lockRootsWithSources takes lockRoots of shas and of what they derive
// from, whose versions root them too (derivation rows are never changed
// once written, so reading them first is safe).
func (s *Store) lockRootsWithSources(ctx context.Context, tx *wtx, shas []string) error {
	_, srcs, err := s.sources(ctx, tx, shas)
	if err != nil {
		return err
	}
	return s.lockRoots(ctx, tx, append(append([]string{}, shas...), srcs...))
}
