package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Deletion claims are release_leases rows of purpose 'delete': a collector
// holds one on a sha256 while it deletes the bytes, and HoldRelease reports
// it to publishers, who wait for it to end before storing the bytes again.
// A claim is recorded, and a lease taken, under the sha256's lock
// (Hooks.LockSHAs; SQLite: the single writer), so one of them always sees
// the other.

// claim records holder's deletion claim on sha until until.
func (s *Store) claim(ctx context.Context, tx *wtx, sha, holder string, until time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO release_leases (sha256, holder, purpose, expires_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (sha256, holder) DO UPDATE SET purpose = excluded.purpose,
		expires_at = excluded.expires_at`), sha, holder, purposeDelete, until.UnixNano())
	return err
}

// ClaimOrphan records a deletion claim on an orphan blob: see meta.GC.
func (s *Store) ClaimOrphan(ctx context.Context, sha, holder string, now time.Time, ttl time.Duration) (bool, error) {
	ok := false
	err := s.update(ctx, func(tx *wtx) error {
		ok = false
		if err := s.lockSHAs(ctx, tx, []string{sha}); err != nil {
			return err
		}
		var held bool
		if err := tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM release_leases
			WHERE sha256 = ? AND holder <> ? AND expires_at > ?)`), sha, holder, now.UnixNano()).Scan(&held); err != nil || held {
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
		return false, s.mapErr("claim orphan "+quote(sha), err)
	}
	return ok, nil
}

// DropClaims ends holder's deletion claims on shas.
func (s *Store) DropClaims(ctx context.Context, holder string, shas ...string) error {
	if len(shas) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *wtx) error {
		return batches(shas, "?", func(list string, batch []string) error {
			args := append(anys(batch), holder, purposeDelete)
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM release_leases
				WHERE sha256 IN (`+list+`) AND holder = ? AND purpose = ?`), args...)
			return err
		})
	})
	return s.mapErr("drop deletion claims", err)
}
