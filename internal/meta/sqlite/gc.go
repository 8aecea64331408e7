package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

var (
	_ meta.GC       = (*Store)(nil)
	_ meta.Policies = (*Store)(nil)
)

// Lease purposes in release_leases.
const (
	purposeUse    = "use"
	purposeDelete = "delete"
)

// GCSnapshot reads, in one read transaction, every deployment's policy,
// every version not collected, every release, the leases and deletion
// claims unexpired at now, the digests the registry references and the
// orphans noted so far.
func (s *Store) GCSnapshot(ctx context.Context, now time.Time) (*meta.GCSnapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, mapErr("gc snapshot", err)
	}
	defer tx.Rollback()
	snap := &meta.GCSnapshot{Leased: map[string]bool{}, Claimed: map[string]bool{},
		External: map[string]bool{}, Orphans: map[string]time.Time{}}
	if err := s.snapshot(ctx, tx, snap, now); err != nil {
		return nil, mapErr("gc snapshot", err)
	}
	return snap, nil
}

func (s *Store) snapshot(ctx context.Context, tx *sql.Tx, snap *meta.GCSnapshot, now time.Time) error {
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
	defer rows.Close()
	for rows.Next() {
		var (
			r                     meta.GCRelease
			collected, collecting sql.NullInt64
		)
		if err := rows.Scan(&r.SHA256, &r.Kind, &r.SizeBytes, &collected, &collecting); err != nil {
			return err
		}
		r.CollectedAt, r.CollectingAt = nullTime(collected), nullTime(collecting)
		snap.Releases = append(snap.Releases, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	err = s.strings(ctx, tx, func(sha string) { snap.Leased[sha] = true },
		`SELECT DISTINCT sha256 FROM release_leases WHERE purpose = ? AND expires_at > ?`, purposeUse, now.UnixNano())
	if err != nil {
		return err
	}
	err = s.strings(ctx, tx, func(sha string) { snap.Claimed[sha] = true },
		`SELECT DISTINCT sha256 FROM release_leases WHERE purpose = ? AND expires_at > ?`, purposeDelete, now.UnixNano())
	if err != nil {
		return err
	}
	if err := s.registryDigests(ctx, tx, snap.External); err != nil {
		return err
	}
	orows, err := tx.QueryContext(ctx, `SELECT digest, first_seen_at FROM gc_orphans`)
	if err != nil {
		return err
	}
	defer orows.Close()
	for orows.Next() {
		var (
			d  string
			at int64
		)
		if err := orows.Scan(&d, &at); err != nil {
			return err
		}
		snap.Orphans[d] = fromNanos(at)
	}
	return orows.Err()
}

// gcDeployments appends the deployments matching where (empty: all).
func (s *Store) gcDeployments(ctx context.Context, q querier, out *[]meta.GCDeployment, where string, args ...any) error {
	query := `SELECT id, active_version_id, retention_days, keep_versions FROM deployments`
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d      meta.GCDeployment
			active sql.NullString
		)
		if err := rows.Scan(&d.ID, &active, &d.RetentionDays, &d.KeepVersions); err != nil {
			return err
		}
		d.ActiveVersionID = nullStr(active)
		*out = append(*out, d)
	}
	return rows.Err()
}

// gcVersions appends the versions matching where, with Pinned set.
func (s *Store) gcVersions(ctx context.Context, q querier, out *[]meta.GCVersion, where string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT id, deployment_id, version_number, artifact_sha256,
		created_at, archived_at, EXISTS (SELECT 1 FROM domains WHERE domains.version_id = versions.id)
		FROM versions WHERE `+where), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v        meta.GCVersion
			created  int64
			archived sql.NullInt64
		)
		if err := rows.Scan(&v.ID, &v.DeploymentID, &v.VersionNumber, &v.SHA256, &created, &archived, &v.Pinned); err != nil {
			return err
		}
		v.CreatedAt, v.ArchivedAt = fromNanos(created), nullTime(archived)
		*out = append(*out, v)
	}
	return rows.Err()
}

// strings calls fn with each value of a one-column query.
func (s *Store) strings(ctx context.Context, q querier, fn func(string), query string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		fn(v)
	}
	return rows.Err()
}

// registryTables reports whether the OCI registry's tables exist.
func (s *Store) registryTables(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master
		WHERE type = 'table' AND name IN ('oci_blobs', 'oci_manifests')`).Scan(&n)
	return n == 2, err
}

// registryDigests adds the hex of every sha256 digest the registry references.
func (s *Store) registryDigests(ctx context.Context, q querier, into map[string]bool) error {
	if ok, err := s.registryTables(ctx, q); err != nil || !ok {
		return err
	}
	return s.strings(ctx, q, func(d string) {
		if hex, ok := strings.CutPrefix(d, "sha256:"); ok {
			into[hex] = true
		}
	}, `SELECT digest FROM oci_blobs UNION SELECT digest FROM oci_manifests`)
}

// registryRefers reports whether the registry references sha256:sha.
func (s *Store) registryRefers(ctx context.Context, q querier, sha string) (bool, error) {
	if ok, err := s.registryTables(ctx, q); err != nil || !ok {
		return false, err
	}
	return s.registryHas(ctx, q, sha)
}

// registryHas is registryRefers once the registry's tables are known to exist.
func (s *Store) registryHas(ctx context.Context, q querier, sha string) (bool, error) {
	var n int
	d := "sha256:" + sha
	err := q.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM oci_blobs WHERE digest = ?)
		+ (SELECT COUNT(*) FROM oci_manifests WHERE digest = ?)`), d, d).Scan(&n)
	return n > 0, err
}
