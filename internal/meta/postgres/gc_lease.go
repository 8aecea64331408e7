package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// HoldRelease takes or renews holder's lease on release sha until the
// store's now+ttl and clears the release's collecting mark, in one
// transaction under sha's advisory lock (so a collection or orphan claim of
// sha either sees the lease or committed its claim first); deleting reports
// an unexpired deletion claim on sha.
func (s *Store) HoldRelease(ctx context.Context, sha, holder string, ttl time.Duration) (bool, error) {
	if !isSHA256(sha) {
		return false, mapErr("hold release", invalid("sha256 %q is not 64 lowercase hex digits", sha))
	}
	deleting := false
	err := s.update(ctx, func(tx pgx.Tx) error {
		if err := s.lockSHAs(ctx, tx, []string{sha}); err != nil {
			return err
		}
		now := s.stamp()
		if _, err := tx.Exec(ctx, s.q(`INSERT INTO release_leases (sha256, holder, purpose, expires_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (sha256, holder) DO UPDATE SET purpose = excluded.purpose,
			expires_at = excluded.expires_at`), sha, holder, purposeUse, now.Add(ttl).UnixNano()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q(`UPDATE releases SET collecting_at = NULL
			WHERE sha256 = ? AND collecting_at IS NOT NULL`), sha); err != nil {
			return err
		}
		return tx.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM release_leases
			WHERE sha256 = ? AND purpose = ? AND expires_at > ?)`), sha, purposeDelete, now.UnixNano()).Scan(&deleting)
	})
	if err != nil {
		return false, mapErr("hold release "+quote(sha), err)
	}
	return deleting, nil
}

// DropRelease ends holder's lease on sha.
func (s *Store) DropRelease(ctx context.Context, sha, holder string) error {
	err := s.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, s.q(`DELETE FROM release_leases WHERE sha256 = ? AND holder = ? AND purpose = ?`),
			sha, holder, purposeUse)
		return err
	})
	return mapErr("drop lease on "+quote(sha), err)
}

// AcquireLock takes or renews the exclusive lock name for holder until the
// store's now+ttl; another holder's unexpired lock: false. Concurrent
// callers queue on the row (ON CONFLICT), and each decides on the row the
// one before it left.
func (s *Store) AcquireLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	ok := false
	err := s.update(ctx, func(tx pgx.Tx) error {
		now := s.stamp()
		tag, err := tx.Exec(ctx, s.q(`INSERT INTO gc_locks (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE gc_locks.holder = excluded.holder OR gc_locks.expires_at <= ?`),
			name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
		ok = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, mapErr("acquire lock "+quote(name), err)
	}
	return ok, nil
}

// ReleaseLock ends holder's lock name.
func (s *Store) ReleaseLock(ctx context.Context, name, holder string) error {
	err := s.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, s.q(`DELETE FROM gc_locks WHERE name = ? AND holder = ?`), name, holder)
		return err
	})
	return mapErr("release lock "+quote(name), err)
}

// NoteOrphans records digests as orphans seen at now (keeping the first
// sighting of known ones), forgets every other orphan, and returns when
// each of digests was first seen.
func (s *Store) NoteOrphans(ctx context.Context, digests []string, now time.Time) (map[string]time.Time, error) {
	seen := map[string]time.Time{}
	if digests == nil {
		digests = []string{} // an empty array, not NULL: forget every orphan
	}
	err := s.update(ctx, func(tx pgx.Tx) error {
		clear(seen)
		if _, err := tx.Exec(ctx, `DELETE FROM gc_orphans AS o
			WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS d WHERE d = o.digest)`, digests); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO gc_orphans (digest, first_seen_at)
			SELECT d, $2 FROM unnest($1::text[]) AS d ON CONFLICT (digest) DO NOTHING`, digests, now.UnixNano()); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT digest, first_seen_at FROM gc_orphans WHERE digest = ANY($1::text[])`, digests)
		if err != nil {
			return err
		}
		var (
			d  string
			at int64
		)
		_, err = pgx.ForEachRow(rows, []any{&d, &at}, func() error {
			seen[d] = fromNanos(at)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, mapErr("note orphans", err)
	}
	return seen, nil
}

// PruneLeases deletes the leases, claims and locks expired at now.
func (s *Store) PruneLeases(ctx context.Context, now time.Time) error {
	err := s.update(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q(`DELETE FROM release_leases WHERE expires_at <= ?`), now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, s.q(`DELETE FROM gc_locks WHERE expires_at <= ?`), now.UnixNano())
		return err
	})
	return mapErr("prune leases", err)
}
