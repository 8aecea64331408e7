package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Garbage collection (meta.GC, meta.Leases, meta.Policies; migration
// 0003_gc) under PostgreSQL's concurrency. The SQLite backend gets its
// serialisation from the single writer; on PostgreSQL every decision about a
// release's sha256 is made under locks taken in one order (Hooks.LockRoots,
// postgres/gc_lock.go),
// and every pointer change writes or locks the version row it points at
// with collected_at IS NULL (activate, checkPin), so a collection and an
// activation, rollback, repoint, publish or lease of the same release never
// both commit on stale reads.

var _ interface {
	meta.Leases
	meta.GC
	meta.Policies
} = (*Store)(nil)

// Lease purposes in release_leases.
const (
	purposeUse    = "use"
	purposeDelete = "delete"
)

// GCSnapshot reads, in one read-only snapshot transaction, every
// deployment's policy, every version not collected, every release, the
// leases and deletion claims unexpired at now, the digests the registry
// references and the orphans noted so far.
func (s *Store) GCSnapshot(ctx context.Context, now time.Time) (*meta.GCSnapshot, error) {
	var snap *meta.GCSnapshot
	err := s.snapshotTx(ctx, func(tx Querier) error {
		snap = &meta.GCSnapshot{Leased: map[string]bool{}, Claimed: map[string]bool{},
			External: map[string]bool{}, Orphans: map[string]time.Time{}}
		return s.snapshot(ctx, tx, snap, now)
	})
	if err != nil {
		return nil, s.mapErr("gc snapshot", err)
	}
	return snap, nil
}

func (s *Store) snapshot(ctx context.Context, tx Querier, snap *meta.GCSnapshot, now time.Time) error {
	if err := s.gcDeployments(ctx, tx, &snap.Deployments, ``); err != nil {
		return err
	}
	if err := s.gcVersions(ctx, tx, &snap.Versions, `collected_at IS NULL`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT sha256, kind, size_bytes, collected_at, collecting_at FROM releases`)
	if err != nil {
		return err
	}
	snap.Releases, err = collectRows(rows, func(row scanner) (meta.GCRelease, error) {
		var (
			r                     meta.GCRelease
			collected, collecting *int64
		)
		err := row.Scan(&r.SHA256, &r.Kind, &r.SizeBytes, &collected, &collecting)
		r.CollectedAt, r.CollectingAt = nullTime(collected), nullTime(collecting)
		return r, err
	})
	if err != nil {
		return err
	}
	for purpose, into := range map[string]map[string]bool{purposeUse: snap.Leased, purposeDelete: snap.Claimed} {
		err := s.strings(ctx, tx, func(sha string) { into[sha] = true },
			`SELECT DISTINCT sha256 FROM release_leases WHERE purpose = ? AND expires_at > ?`, purpose, now.UnixNano())
		if err != nil {
			return err
		}
	}
	if err := s.registryDigests(ctx, tx, snap.External); err != nil {
		return err
	}
	if snap.Derived, err = s.derivedRows(ctx, tx, ``); err != nil {
		return err
	}
	if snap.Sources, err = s.gcSources(ctx, tx, ``); err != nil {
		return err
	}
	if snap.Builders, err = s.gcBuilders(ctx, tx, ``); err != nil {
		return err
	}
	if snap.Building, err = s.gcBuilding(ctx, tx, ``); err != nil {
		return err
	}
	orows, err := tx.QueryContext(ctx, `SELECT digest, first_seen_at FROM gc_orphans`)
	if err != nil {
		return err
	}
	var (
		d  string
		at int64
	)
	_, err = forEachRow(orows, []any{&d, &at}, func() error {
		snap.Orphans[d] = fromNanos(at)
		return nil
	})
	return err
}

// gcDeployments appends the deployments matching where (empty: all).
func (s *Store) gcDeployments(ctx context.Context, q Querier, out *[]meta.GCDeployment, where string, args ...any) error {
	query := `SELECT id, active_version_id, retention_days, keep_versions, source_retention_days FROM deployments`
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	var d meta.GCDeployment
	_, err = forEachRow(rows, []any{&d.ID, &d.ActiveVersionID, &d.RetentionDays, &d.KeepVersions, &d.SourceRetentionDays}, func() error {
		*out = append(*out, d) // Scan allocates a fresh ActiveVersionID per row
		return nil
	})
	return err
}

// gcVersions appends the versions matching where, with Pinned set.
func (s *Store) gcVersions(ctx context.Context, q Querier, out *[]meta.GCVersion, where string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT id, deployment_id, version_number, artifact_sha256,
		created_at, archived_at, EXISTS (SELECT 1 FROM domains WHERE domains.version_id = versions.id)
		FROM versions WHERE `+where), args...)
	if err != nil {
		return err
	}
	var (
		v        meta.GCVersion
		created  int64
		archived *int64
	)
	_, err = forEachRow(rows, []any{&v.ID, &v.DeploymentID, &v.VersionNumber, &v.SHA256, &created, &archived, &v.Pinned},
		func() error {
			v.CreatedAt, v.ArchivedAt = fromNanos(created), nullTime(archived)
			*out = append(*out, v)
			return nil
		})
	return err
}

// gcSources lists the versions (collected or not) with a source
// snapshot, of sha256 sha ("": every one).
func (s *Store) gcSources(ctx context.Context, q Querier, sha string) ([]meta.GCSource, error) {
	query, args := `SELECT deployment_id, id, version_number, source_sha256, created_at FROM versions WHERE source_snapshot`, []any{}
	if sha != "" {
		query, args = query+` AND source_sha256 = ?`, append(args, sha)
	}
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(row scanner) (meta.GCSource, error) {
		var (
			v       meta.GCSource
			created int64
		)
		err := row.Scan(&v.DeploymentID, &v.VersionID, &v.VersionNumber, &v.SHA256, &created)
		v.CreatedAt = fromNanos(created)
		return v, err
	})
}

// gcBuilders lists which builders succeeded builds ran on which
// snapshots, those of builder sha ("": every one).
func (s *Store) gcBuilders(ctx context.Context, q Querier, sha string) ([]meta.GCBuilder, error) {
	query, args := `SELECT DISTINCT source_sha256, builder_sha256 FROM builds WHERE state = ?`, []any{meta.BuildSucceeded}
	if sha != "" {
		query, args = query+` AND builder_sha256 = ?`, append(args, sha)
	}
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(row scanner) (meta.GCBuilder, error) {
		var b meta.GCBuilder
		return b, row.Scan(&b.Source, &b.Builder)
	})
}

// gcBuilding is the set of the snapshots and builders of queued and
// running builds (only sha if set).
func (s *Store) gcBuilding(ctx context.Context, q Querier, sha string) (map[string]bool, error) {
	out := map[string]bool{}
	query, args := `SELECT source_sha256 FROM builds WHERE state IN (?, ?) UNION SELECT builder_sha256 FROM builds WHERE state IN (?, ?)`,
		[]any{meta.BuildQueued, meta.BuildRunning, meta.BuildQueued, meta.BuildRunning}
	if sha != "" {
		query = `SELECT source_sha256 FROM builds WHERE state IN (?, ?) AND source_sha256 = ?
			UNION SELECT builder_sha256 FROM builds WHERE state IN (?, ?) AND builder_sha256 = ?`
		args = []any{meta.BuildQueued, meta.BuildRunning, sha, meta.BuildQueued, meta.BuildRunning, sha}
	}
	err := s.strings(ctx, q, func(v string) { out[v] = true }, query, args...)
	return out, err
}

// strings calls fn with each value of a one-column query.
func (s *Store) strings(ctx context.Context, q Querier, fn func(string), query string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	var v string
	_, err = forEachRow(rows, []any{&v}, func() error {
		fn(v)
		return nil
	})
	return err
}

// registryDigests adds the hex of every sha256 digest the registry
// references. (Its tables exist: Open applies every migration.)
func (s *Store) registryDigests(ctx context.Context, q Querier, into map[string]bool) error {
	return s.strings(ctx, q, func(d string) {
		if hex, ok := strings.CutPrefix(d, "sha256:"); ok {
			into[hex] = true
		}
	}, `SELECT digest FROM oci_blobs UNION SELECT digest FROM oci_manifests`)
}

// registryRefers reports whether the registry references sha256:sha.
func (s *Store) registryRefers(ctx context.Context, q Querier, sha string) (bool, error) {
	var ok bool
	d := "sha256:" + sha
	err := q.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM oci_blobs WHERE digest = ?)
		OR EXISTS (SELECT 1 FROM oci_manifests WHERE digest = ?)`), d, d).Scan(&ok)
	return ok, err
}
