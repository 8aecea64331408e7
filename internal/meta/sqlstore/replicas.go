package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// AddReplicas records that digest must be copied to each region. Rows are
// written in region order, so concurrent calls do not deadlock.
func (s *Store) AddReplicas(ctx context.Context, digest string, regions []string) error {
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp().UnixNano()
		for _, r := range sorted(regions) {
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO blob_replicas
				(digest, region, state, attempts, reason, claim, next_try_at, created_at, updated_at)
				VALUES (?, ?, 'pending', 0, '', '', ?, ?, ?)
				ON CONFLICT (digest, region) DO UPDATE SET state = 'pending', attempts = 0, claim = '',
				next_try_at = excluded.next_try_at, updated_at = excluded.updated_at
				WHERE blob_replicas.state IN ('failed', 'deleting')`), digest, r, now, now, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return s.mapErr("add replicas of "+quote(digest), err)
}

// DeleteReplicas marks digest's row in each region deleting, claimed by
// claim until lease ends.
func (s *Store) DeleteReplicas(ctx context.Context, digest string, regions []string, claim string, lease time.Duration) error {
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		due := now.Add(lease).UnixNano()
		for _, r := range sorted(regions) {
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO blob_replicas
				(digest, region, state, attempts, reason, claim, next_try_at, created_at, updated_at)
				VALUES (?, ?, 'deleting', 0, '', ?, ?, ?, ?)
				ON CONFLICT (digest, region) DO UPDATE SET state = 'deleting', attempts = 0, reason = '',
				claim = excluded.claim, next_try_at = excluded.next_try_at, updated_at = excluded.updated_at`),
				digest, r, claim, due, now.UnixNano(), now.UnixNano())
			if err != nil {
				return err
			}
		}
		return nil
	})
	return s.mapErr("delete replicas of "+quote(digest), err)
}

// ClaimReplicas claims up to limit due rows for lease. Rows another
// transaction is claiming are skipped (FOR UPDATE SKIP LOCKED on
// PostgreSQL; on SQLite claims run one at a time), so replicators in several
// processes share the queue.
func (s *Store) ClaimReplicas(ctx context.Context, lease time.Duration, limit int) ([]meta.Replica, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []meta.Replica
	err := s.update(ctx, func(tx *wtx) error {
		out = out[:0]
		now := s.stamp()
		rows, err := tx.QueryContext(ctx, s.q(replicaSelect+`
			WHERE state IN ('pending', 'failed', 'deleting') AND next_try_at <= ?
			ORDER BY next_try_at, digest, region LIMIT ?`+s.forUpdate+s.skipLocked), now.UnixNano(), limit)
		if err != nil {
			return err
		}
		if out, err = scanReplicas(rows, out); err != nil {
			return err
		}
		until := now.Add(lease)
		for i := range out {
			r := &out[i]
			r.Claim, r.Attempts, r.NextTryAt, r.UpdatedAt = newID("clm_"), r.Attempts+1, &until, now
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE blob_replicas SET claim = ?, attempts = ?,
				next_try_at = ?, updated_at = ? WHERE digest = ? AND region = ?`),
				r.Claim, r.Attempts, until.UnixNano(), now.UnixNano(), r.Digest, r.Region); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("claim replicas", err)
	}
	return out, nil
}

// FinishReplica records the outcome of the work on claimed row r.
func (s *Store) FinishReplica(ctx context.Context, r meta.Replica, state, reason string, retryIn time.Duration) (bool, error) {
	switch state {
	case "", meta.ReplicaPending, meta.ReplicaReady, meta.ReplicaFailed, meta.ReplicaDeleting:
	default:
		return false, s.mapErr("finish replica", invalid("replica state %q", state))
	}
	done := false
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		var n int64
		if state == "" {
			tag, err := tx.ExecContext(ctx, s.q(`DELETE FROM blob_replicas
				WHERE digest = ? AND region = ? AND state = ? AND claim = ?`), r.Digest, r.Region, r.State, r.Claim)
			if err != nil {
				return err
			}
			n = affected(tag)
		} else {
			if state == meta.ReplicaReady {
				reason, retryIn = "", 0
			}
			tag, err := tx.ExecContext(ctx, s.q(`UPDATE blob_replicas SET state = ?, reason = ?, claim = '',
				next_try_at = ?, updated_at = ? WHERE digest = ? AND region = ? AND state = ? AND claim = ?`),
				state, reason, now.Add(retryIn).UnixNano(), now.UnixNano(), r.Digest, r.Region, r.State, r.Claim)
			if err != nil {
				return err
			}
			n = affected(tag)
		}
		done = n == 1
		return nil
	})
	if err != nil {
		return false, s.mapErr("finish replica "+quote(r.Digest)+" in "+quote(r.Region), err)
	}
	return done, nil
}

// ReplicaStatuses returns digest's rows by region.
func (s *Store) ReplicaStatuses(ctx context.Context, digest string) (map[string]meta.ReplicaStatus, error) {
	var rs []meta.Replica
	err := s.read(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, s.q(replicaSelect+` WHERE digest = ?`), digest)
		if err != nil {
			return err
		}
		rs, err = scanReplicas(rows, rs[:0])
		return err
	})
	if err != nil {
		return nil, s.mapErr("replica statuses of "+quote(digest), err)
	}
	out := make(map[string]meta.ReplicaStatus, len(rs))
	for _, r := range rs {
		out[r.Region] = r.ReplicaStatus
	}
	return out, nil
}

const replicaSelect = `SELECT digest, region, state, attempts, reason, claim, next_try_at, updated_at FROM blob_replicas`

// scanReplicas appends the rows of replicaSelect to out and closes rows.
func scanReplicas(rows *sql.Rows, out []meta.Replica) ([]meta.Replica, error) {
	defer rows.Close()
	for rows.Next() {
		var r meta.Replica
		var next, updated int64
		var attempts int32
		if err := rows.Scan(&r.Digest, &r.Region, &r.State, &attempts, &r.Error, &r.Claim, &next, &updated); err != nil {
			return nil, err
		}
		r.Attempts, r.UpdatedAt = int(attempts), fromNanos(updated)
		if r.State != meta.ReplicaReady {
			t := fromNanos(next)
			r.NextTryAt = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
