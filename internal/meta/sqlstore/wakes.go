package sqlstore

import (
	"context"
	"database/sql"

	"github.com/cairnhq/cairn/internal/meta"
)

var _ meta.Wakes = (*Store)(nil)

// upsertWake inserts or overwrites r's row when r's version is one of its
// deployment's; all also overwrites woken_at. It reports whether a row
// was written.
func (s *Store) upsertWake(ctx context.Context, tx *wtx, r meta.WakeRef, now int64, all bool) (bool, error) {
	set := `last_request = CASE WHEN excluded.last_request > wakes.last_request THEN excluded.last_request ELSE wakes.last_request END`
	if all {
		set = `woken_at = excluded.woken_at, ` + set
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO wakes (deployment_id, version_id, woken_at, last_request)
		SELECT v.deployment_id, v.id, ?, ? FROM versions v WHERE v.id = ? AND v.deployment_id = ?
		ON CONFLICT (deployment_id, version_id) DO UPDATE SET `+set), now, now, r.VersionID, r.DeploymentID)
	if err != nil {
		return false, err
	}
	return affected(res) > 0, nil
}

// Wake records that a version was asked for and announces it.
func (s *Store) Wake(ctx context.Context, r meta.WakeRef) error {
	err := s.update(ctx, func(tx *wtx) error {
		ok, err := s.upsertWake(ctx, tx, r, s.stamp().UnixNano(), true)
		if err != nil {
			return err
		}
		if !ok {
			return sql.ErrNoRows
		}
		if err := s.bumpPlacement(ctx, tx); err != nil {
			return err
		}
		return s.announceInstances(ctx, tx, r.DeploymentID)
	})
	return s.mapErr("wake version "+quote(r.VersionID)+" of "+quote(r.DeploymentID), err)
}

// TouchWakes moves the last request of versions to now.
func (s *Store) TouchWakes(ctx context.Context, refs []meta.WakeRef) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp().UnixNano()
		for _, r := range refs {
			if _, err := s.upsertWake(ctx, tx, r, now, false); err != nil {
				return err
			}
		}
		return nil
	})
	return s.mapErr("touch wakes", err)
}

// wakes reads every wake row (PlacementState).
func (s *Store) wakes(ctx context.Context, q Querier) ([]meta.Wake, error) {
	rows, err := q.QueryContext(ctx, `SELECT deployment_id, version_id, woken_at, last_request FROM wakes
		ORDER BY deployment_id`+s.collateC+`, version_id`+s.collateC)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r scanner) (meta.Wake, error) {
		var w meta.Wake
		var woken, last int64
		err := r.Scan(&w.DeploymentID, &w.VersionID, &woken, &last)
		w.WokenAt, w.LastRequest = fromNanos(woken), fromNanos(last)
		return w, err
	})
}
