package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Rollouts (0019): rolling replacements of a dynamic deployment's active
// version, driven by the scheduler.

const rolloutCols = `r.id, r.deployment_id, r.action, r.from_version_id, r.to_version_id, v.version_number, r.state,
	r.reason, r.actor, r.healthy, r.wanted, r.deadline, r.created_at, r.updated_at, r.finished_at`

const rolloutFrom = ` FROM rollouts r JOIN versions v ON v.id = r.to_version_id`

func scanRollout(r scanner) (*meta.Rollout, error) {
	var (
		ro                         meta.Rollout
		from                       sql.NullString
		deadline, created, updated int64
		finished                   sql.NullInt64
	)
	if err := r.Scan(&ro.ID, &ro.DeploymentID, &ro.Action, &from, &ro.ToVersionID, &ro.ToVersionNumber, &ro.State,
		&ro.Reason, &ro.Actor, &ro.Healthy, &ro.Wanted, &deadline, &created, &updated, &finished); err != nil {
		return nil, err
	}
	if from.Valid {
		ro.FromVersionID = &from.String
	}
	ro.Deadline, ro.CreatedAt, ro.UpdatedAt = fromNanos(deadline), fromNanos(created), fromNanos(updated)
	ro.FinishedAt = nullNanos(finished)
	return &ro, nil
}

// StartRollout starts a rollout, superseding a running one.
func (s *Store) StartRollout(ctx context.Context, nr meta.NewRollout) (*meta.Rollout, error) {
	op := fmt.Sprintf("start rollout of %q to v%d", nr.DeploymentID, nr.VersionNumber)
	if nr.Action != meta.ActionActivate && nr.Action != meta.ActionRollback {
		return nil, s.mapErr(op, invalid("action %q is neither %q nor %q", nr.Action, meta.ActionActivate, meta.ActionRollback))
	}
	var out *meta.Rollout
	err := s.update(ctx, func(tx *wtx) error {
		d, err := s.lockDeployment(ctx, tx, nr.DeploymentID)
		if err != nil {
			return err
		}
		v, err := s.versionByNumber(ctx, tx, d.ID, nr.VersionNumber)
		if err != nil {
			return err
		}
		if v.CollectedAt != nil {
			return meta.ErrGone
		}
		now := s.stamp()
		superseded, err := s.supersede(ctx, tx, d.ID, now, nr.Actor)
		if err != nil {
			return err
		}
		if d.ActiveVersionID != nil && *d.ActiveVersionID == v.ID && !superseded {
			return fmt.Errorf("%w: v%d of %s is already active", meta.ErrConflict, v.VersionNumber, d.Name)
		}
		// created_at orders a deployment's rollouts: strictly increasing
		// even when the clock stands still.
		var last int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(created_at), 0) FROM rollouts WHERE deployment_id = ?`),
			d.ID).Scan(&last); err != nil {
			return err
		}
		if now.UnixNano() <= last {
			now = fromNanos(last + 1)
		}
		ro := &meta.Rollout{ID: newID("ro_"), DeploymentID: d.ID, Action: nr.Action, FromVersionID: d.ActiveVersionID,
			ToVersionID: v.ID, ToVersionNumber: v.VersionNumber, State: meta.RolloutRunning, Actor: nr.Actor,
			Deadline: nr.Deadline.UTC(), CreatedAt: now, UpdatedAt: now}
		if d.ActiveVersionID != nil && *d.ActiveVersionID == v.ID {
			// Back to the active version while another rollout ran: that
			// one is superseded, and nothing is left to do.
			ro.State, ro.Reason, ro.FinishedAt = meta.RolloutSucceeded, "already active", &now
		}
		var finished *int64
		if ro.FinishedAt != nil {
			finished = new(now.UnixNano())
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO rollouts (id, deployment_id, action, from_version_id, to_version_id,
			state, reason, actor, deadline, created_at, updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			ro.ID, ro.DeploymentID, ro.Action, ro.FromVersionID, ro.ToVersionID, ro.State, ro.Reason, ro.Actor,
			ro.Deadline.UnixNano(), now.UnixNano(), now.UnixNano(), finished); err != nil {
			return err
		}
		if err := s.bumpPlacement(ctx, tx); err != nil {
			return err
		}
		out = ro
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: nr.Actor, Action: meta.ActionRolloutStart,
			DeploymentID: d.ID, VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256},
			map[string]any{"rollout_id": ro.ID, "action": ro.Action, "from_version_id": ro.FromVersionID,
				"version_number": v.VersionNumber, "deadline": ro.Deadline, "state": ro.State})
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return out, nil
}

// supersede ends depID's running rollout, if any.
func (s *Store) supersede(ctx context.Context, tx *wtx, depID string, now time.Time, actor string) (bool, error) {
	id, err := rowTo[string](tx.QueryRowContext(ctx, s.q(`SELECT id FROM rollouts WHERE deployment_id = ? AND state = ?`),
		depID, meta.RolloutRunning))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?`),
		meta.RolloutSuperseded, "a newer rollout started", now.UnixNano(), now.UnixNano(), id); err != nil {
		return false, err
	}
	return true, s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionRolloutSupersede, DeploymentID: depID},
		map[string]any{"rollout_id": id})
}

// lockRollout reads a running rollout and locks its deployment.
func (s *Store) lockRollout(ctx context.Context, tx *wtx, id string) (*meta.Deployment, *meta.Rollout, error) {
	ro, err := scanRollout(tx.QueryRowContext(ctx, s.q(`SELECT `+rolloutCols+rolloutFrom+` WHERE r.id = ?`), id))
	if err != nil {
		return nil, nil, err
	}
	d, err := s.lockDeployment(ctx, tx, ro.DeploymentID)
	if err != nil {
		return nil, nil, err
	}
	// Read again under the deployment's lock: rollouts change under it.
	if ro, err = scanRollout(tx.QueryRowContext(ctx, s.q(`SELECT `+rolloutCols+rolloutFrom+` WHERE r.id = ?`), id)); err != nil {
		return nil, nil, err
	}
	if ro.State != meta.RolloutRunning {
		return nil, nil, fmt.Errorf("%w: rollout %s is %s", meta.ErrConflict, id, ro.State)
	}
	return d, ro, nil
}

// ProgressRollout records a running rollout's progress.
func (s *Store) ProgressRollout(ctx context.Context, id string, healthy, wanted int, actor string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, ro, err := s.lockRollout(ctx, tx, id)
		if err != nil {
			return err
		}
		if ro.Healthy == healthy && ro.Wanted == wanted {
			return nil
		}
		now := s.stamp()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET healthy = ?, wanted = ?, updated_at = ? WHERE id = ?`),
			healthy, wanted, now.UnixNano(), id); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionRolloutProgress,
			DeploymentID: ro.DeploymentID, VersionID: ro.ToVersionID},
			map[string]any{"rollout_id": id, "healthy": healthy, "wanted": wanted})
	})
	return s.mapErr("progress of rollout "+quote(id), err)
}

// FinishRollout ends a running rollout, moving the pointer when ok.
func (s *Store) FinishRollout(ctx context.Context, id string, ok bool, reason, actor string) (*meta.Rollout, error) {
	var out *meta.Rollout
	err := s.update(ctx, func(tx *wtx) error {
		d, ro, err := s.lockRollout(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.stamp()
		action, state := meta.ActionRolloutFail, meta.RolloutFailed
		if ok {
			action, state = meta.ActionRolloutSucceed, meta.RolloutSucceeded
			v, err := s.versionByNumber(ctx, tx, d.ID, ro.ToVersionNumber)
			if err != nil {
				return err
			}
			if v.CollectedAt != nil {
				return meta.ErrGone
			}
			// The pointer move and its own event, as Activate makes them.
			if d.ActiveVersionID == nil || *d.ActiveVersionID != v.ID {
				if err := s.activate(ctx, tx, d, v, now, ro.Actor, ro.Action); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?`),
			state, reason, now.UnixNano(), now.UnixNano(), id); err != nil {
			return err
		}
		if err := s.bumpPlacement(ctx, tx); err != nil {
			return err
		}
		ro.State, ro.Reason, ro.UpdatedAt, ro.FinishedAt = state, reason, now, &now
		out = ro
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: action,
			DeploymentID: ro.DeploymentID, VersionID: ro.ToVersionID},
			map[string]any{"rollout_id": id, "reason": reason, "healthy": ro.Healthy, "wanted": ro.Wanted})
	})
	if err != nil {
		return nil, s.mapErr("finish rollout "+quote(id), err)
	}
	return out, nil
}

// GetRollout returns one rollout.
func (s *Store) GetRollout(ctx context.Context, id string) (*meta.Rollout, error) {
	return readRow(ctx, s, "get rollout "+quote(id), func(q Querier) (*meta.Rollout, error) {
		return scanRollout(q.QueryRowContext(ctx, s.q(`SELECT `+rolloutCols+rolloutFrom+` WHERE r.id = ?`), id))
	})
}

// ListRollouts returns a deployment's rollouts, newest first.
func (s *Store) ListRollouts(ctx context.Context, depID string, limit int) ([]meta.Rollout, error) {
	q := `SELECT ` + rolloutCols + rolloutFrom + ` WHERE r.deployment_id = ? ORDER BY r.created_at DESC, r.id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	out, err := list(ctx, s, scanRollout, s.q(q), depID)
	if err != nil {
		return nil, s.mapErr("list rollouts of "+quote(depID), err)
	}
	return out, nil
}
