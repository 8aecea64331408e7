package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// rootOf finds the strongest root of release sha at now inside tx, from the
// rows that can hold it: its leases, the registry, the versions that
// reference it, their deployments and, for keep_versions, the other
// versions of those deployments. nil: unrooted.
func (s *Store) rootOf(ctx context.Context, tx *sql.Tx, sha string, now time.Time) (*meta.Root, error) {
	snap := &meta.GCSnapshot{}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM release_leases
		WHERE sha256 = ? AND purpose = ? AND expires_at > ?`), sha, purposeUse, now.UnixNano()).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return &meta.Root{Reason: meta.RootLease}, nil
	}
	if ext, err := s.registryRefers(ctx, tx, sha); err != nil || ext {
		if ext {
			return &meta.Root{Reason: meta.RootRegistry}, nil
		}
		return nil, err
	}
	var mine []meta.GCVersion
	if err := s.gcVersions(ctx, tx, &mine, `artifact_sha256 = ? AND collected_at IS NULL`, sha); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, v := range mine {
		if seen[v.DeploymentID] {
			continue
		}
		seen[v.DeploymentID] = true
		n := len(snap.Deployments)
		if err := s.gcDeployments(ctx, tx, &snap.Deployments, `id = ?`, v.DeploymentID); err != nil {
			return nil, err
		}
		if len(snap.Deployments) > n && snap.Deployments[n].KeepVersions > 0 {
			// the ranking needs every version of the deployment
			err := s.gcVersions(ctx, tx, &snap.Versions, `deployment_id = ? AND collected_at IS NULL`, v.DeploymentID)
			if err != nil {
				return nil, err
			}
			continue
		}
		for _, w := range mine {
			if w.DeploymentID == v.DeploymentID {
				snap.Versions = append(snap.Versions, w)
			}
		}
	}
	if r, ok := snap.Roots(now)[sha]; ok {
		return &r, nil
	}
	return nil, nil
}

// MarkCollecting marks each unrooted release of shas collecting at now and
// unmarks the rooted ones, in one transaction; it returns their roots.
func (s *Store) MarkCollecting(ctx context.Context, shas []string, now time.Time) (map[string]meta.Root, error) {
	kept := map[string]meta.Root{}
	err := s.update(ctx, func(tx *sql.Tx) error {
		clear(kept)
		for _, sha := range shas {
			r, err := s.rootOf(ctx, tx, sha, now)
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
		return nil, mapErr("mark releases collecting", err)
	}
	return kept, nil
}

// CollectRelease is the second phase of a collection: see meta.GC.
func (s *Store) CollectRelease(ctx context.Context, sha string, markedBefore, now time.Time, holder string, ttl time.Duration) ([]meta.Version, *meta.Root, error) {
	var (
		collected []meta.Version
		root      *meta.Root
	)
	at := fromNanos(now.UnixNano())
	err := s.update(ctx, func(tx *sql.Tx) error {
		collected, root = nil, nil
		rel, marked, err := s.releaseMark(ctx, tx, sha)
		if err != nil || rel.CollectedAt != nil || marked == nil || marked.After(markedBefore) {
			return err
		}
		if root, err = s.rootOf(ctx, tx, sha, now); err != nil || root != nil {
			if err == nil {
				_, err = tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = NULL WHERE sha256 = ?`), sha)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = ?, collecting_at = NULL
			WHERE sha256 = ?`), at.UnixNano(), sha); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+versionCols+` FROM versions
			WHERE artifact_sha256 = ? AND collected_at IS NULL ORDER BY deployment_id, version_number`), sha)
		if err != nil {
			return err
		}
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				rows.Close()
				return err
			}
			collected = append(collected, *v)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for i := range collected {
			v := &collected[i]
			v.Status, v.CollectedAt = meta.StatusCollected, &at
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, collected_at = ? WHERE id = ?`),
				meta.StatusCollected, at.UnixNano(), v.ID); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, meta.Event{
				At: s.stamp(), Actor: "gc", Action: meta.ActionCollect, DeploymentID: v.DeploymentID,
				VersionID: v.ID, ReleaseSHA256: sha,
			}, map[string]any{"version_number": v.VersionNumber, "collected_at": at, "size_bytes": rel.SizeBytes}); err != nil {
				return err
			}
		}
		if collected == nil {
			collected = []meta.Version{}
		}
		return s.claim(ctx, tx, sha, holder, now.Add(ttl))
	})
	if err != nil {
		return nil, nil, mapErr("collect release "+quote(sha), err)
	}
	if collected != nil {
		s.notify()
	}
	return collected, root, nil
}

// releaseMark reads a release and its collecting mark.
func (s *Store) releaseMark(ctx context.Context, q querier, sha string) (*meta.Release, *time.Time, error) {
	rel, err := s.releaseBySHA(ctx, q, sha)
	if err != nil {
		return nil, nil, err
	}
	var marked sql.NullInt64
	err = q.QueryRowContext(ctx, s.q(`SELECT collecting_at FROM releases WHERE sha256 = ?`), sha).Scan(&marked)
	return rel, nullTime(marked), err
}

// claim records holder's deletion claim on sha until until.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, sha, holder string, until time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO release_leases (sha256, holder, purpose, expires_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (sha256, holder) DO UPDATE SET purpose = excluded.purpose,
		expires_at = excluded.expires_at`), sha, holder, purposeDelete, until.UnixNano())
	return err
}

// ClaimOrphan records a deletion claim on an orphan blob: see meta.GC.
func (s *Store) ClaimOrphan(ctx context.Context, sha, holder string, now time.Time, ttl time.Duration) (bool, error) {
	ok := false
	err := s.update(ctx, func(tx *sql.Tx) error {
		ok = false
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM release_leases
			WHERE sha256 = ? AND holder <> ? AND expires_at > ?`), sha, holder, now.UnixNano()).Scan(&n); err != nil || n > 0 {
			return err
		}
		rel, err := s.releaseBySHA(ctx, tx, sha)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case rel.CollectedAt == nil:
			return nil
		}
		if ext, err := s.registryRefers(ctx, tx, sha); err != nil || ext {
			return err
		}
		ok = true
		return s.claim(ctx, tx, sha, holder, now.Add(ttl))
	})
	if err != nil {
		return false, mapErr("claim orphan "+quote(sha), err)
	}
	return ok, nil
}

// DropClaim ends holder's deletion claim on sha.
func (s *Store) DropClaim(ctx context.Context, sha, holder string) error {
	err := s.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM release_leases WHERE sha256 = ? AND holder = ? AND purpose = ?`),
			sha, holder, purposeDelete)
		return err
	})
	return mapErr("drop claim on "+quote(sha), err)
}
