package sqlstore

import (
	"context"
	"slices"
	"time"
)

// HoldRelease takes or renews holder's lease on release sha until the
// store's now+ttl and clears the release's collecting mark, in one
// transaction under sha's lock (Hooks.LockSHAs), so a collection or orphan
// claim of sha either sees the lease or committed its claim first; deleting
// reports an unexpired deletion claim on sha.
func (s *Store) HoldRelease(ctx context.Context, sha, holder string, ttl time.Duration) (bool, error) {
	if !isSHA256(sha) {
		return false, s.mapErr("hold release", invalid("sha256 %q is not 64 lowercase hex digits", sha))
	}
	deleting := false
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.lockSHAs(ctx, tx, []string{sha}); err != nil {
			return err
		}
		now := s.stamp()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO release_leases (sha256, holder, purpose, expires_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (sha256, holder) DO UPDATE SET purpose = excluded.purpose,
			expires_at = excluded.expires_at`), sha, holder, purposeUse, now.Add(ttl).UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = NULL
			WHERE sha256 = ? AND collecting_at IS NOT NULL`), sha); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM release_leases
			WHERE sha256 = ? AND purpose = ? AND expires_at > ?)`), sha, purposeDelete, now.UnixNano()).Scan(&deleting)
	})
	if err != nil {
		return false, s.mapErr("hold release "+quote(sha), err)
	}
	return deleting, nil
}

// DropRelease ends holder's lease on sha.
func (s *Store) DropRelease(ctx context.Context, sha, holder string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM release_leases WHERE sha256 = ? AND holder = ? AND purpose = ?`),
			sha, holder, purposeUse)
		return err
	})
	return s.mapErr("drop lease on "+quote(sha), err)
}

// RenewLeases extends holder's unexpired leases (not its deletion claims)
// to the store's now+ttl in one statement.
func (s *Store) RenewLeases(ctx context.Context, holder string, ttl time.Duration) (int64, error) {
	var n int64
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		res, err := tx.ExecContext(ctx, s.q(`UPDATE release_leases SET expires_at = ?
			WHERE holder = ? AND purpose = ? AND expires_at > ?`),
			now.Add(ttl).UnixNano(), holder, purposeUse, now.UnixNano())
		n = affected(res)
		return err
	})
	if err != nil {
		return 0, s.mapErr("renew leases of "+quote(holder), err)
	}
	return n, nil
}

// AcquireLock takes or renews the exclusive lock name for holder until the
// store's now+ttl; another holder's unexpired lock: false. Concurrent
// callers queue on the row (ON CONFLICT), and each decides on the row the
// one before it left.
func (s *Store) AcquireLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	ok := false
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		tag, err := tx.ExecContext(ctx, s.q(`INSERT INTO gc_locks (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE gc_locks.holder = excluded.holder OR gc_locks.expires_at <= ?`),
			name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
		ok = err == nil && affected(tag) == 1
		return err
	})
	if err != nil {
		return false, s.mapErr("acquire lock "+quote(name), err)
	}
	return ok, nil
}

// ReleaseLock ends holder's lock name.
func (s *Store) ReleaseLock(ctx context.Context, name, holder string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM gc_locks WHERE name = ? AND holder = ?`), name, holder)
		return err
	})
	return s.mapErr("release lock "+quote(name), err)
}

// Holders lists every holder of a lock, lease or deletion claim.
func (s *Store) Holders(ctx context.Context) ([]string, error) {
	var hs []string
	err := s.read(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, `SELECT holder FROM gc_locks UNION SELECT holder FROM release_leases`)
		if err != nil {
			return err
		}
		hs, err = collectRows(rows, rowTo[string])
		return err
	})
	if err != nil {
		return nil, s.mapErr("list holders", err)
	}
	slices.Sort(hs)
	return hs, nil
}

// DropHolder ends every lock, lease and deletion claim of holder.
func (s *Store) DropHolder(ctx context.Context, holder string) error {
	err := s.update(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM release_leases WHERE holder = ?`), holder); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM gc_locks WHERE holder = ?`), holder)
		return err
	})
	return s.mapErr("drop holder "+quote(holder), err)
}

// NoteOrphans records digests as orphans seen at now (keeping the first
// sighting of known ones), forgets every other orphan, and returns when
// each of digests was first seen.
func (s *Store) NoteOrphans(ctx context.Context, digests []string, now time.Time) (map[string]time.Time, error) {
	seen := map[string]time.Time{}
	want := map[string]bool{}
	for _, d := range digests {
		want[d] = true
	}
	err := s.update(ctx, func(tx *wtx) error {
		clear(seen)
		rows, err := tx.QueryContext(ctx, `SELECT digest FROM gc_orphans`)
		if err != nil {
			return err
		}
		old, err := collectRows(rows, rowTo[string])
		if err != nil {
			return err
		}
		known := map[string]bool{}
		var gone, added []string
		for _, d := range old {
			if known[d] = true; !want[d] {
				gone = append(gone, d)
			}
		}
		for d := range want {
			if !known[d] { // a known one keeps its first sighting
				added = append(added, d)
			}
		}
		slices.Sort(gone)
		slices.Sort(added)
		err = batches(gone, "?", func(list string, batch []string) error {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM gc_orphans WHERE digest IN (`+list+`)`), anys(batch)...)
			return err
		})
		if err != nil {
			return err
		}
		err = batches(added, "(?, ?)", func(list string, batch []string) error {
			args := make([]any, 0, 2*len(batch))
			for _, d := range batch {
				args = append(args, d, now.UnixNano())
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO gc_orphans (digest, first_seen_at) VALUES `+list+`
				ON CONFLICT (digest) DO NOTHING`), args...)
			return err
		})
		if err != nil {
			return err
		}
		if rows, err = tx.QueryContext(ctx, `SELECT digest, first_seen_at FROM gc_orphans`); err != nil {
			return err
		}
		var (
			d  string
			at int64
		)
		_, err = forEachRow(rows, []any{&d, &at}, func() error {
			if want[d] {
				seen[d] = fromNanos(at)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, s.mapErr("note orphans", err)
	}
	return seen, nil
}

// PruneLeases deletes the leases, claims and locks expired at now.
func (s *Store) PruneLeases(ctx context.Context, now time.Time) error {
	err := s.update(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM release_leases WHERE expires_at <= ?`), now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM gc_locks WHERE expires_at <= ?`), now.UnixNano())
		return err
	})
	return s.mapErr("prune leases", err)
}
