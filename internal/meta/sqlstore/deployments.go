package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultRetentionDays replaces a zero retention_days.
const DefaultRetentionDays = 30

const deploymentCols = `id, name, kind, active_version_id, retention_days, keep_versions, activate_on_push, created_at, deleted_at, spa, clean_urls, proxy_rewrites, source_retention_days`

func scanDeployment(row scanner) (*meta.Deployment, error) {
	var (
		d       meta.Deployment
		created int64
		deleted sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.Name, &d.Kind, &d.ActiveVersionID, &d.RetentionDays, &d.KeepVersions,
		&d.ActivateOnPush, &created, &deleted, &d.SPA, &d.CleanURLs, &d.ProxyRewrites, &d.SourceRetentionDays); err != nil {
		return nil, err
	}
	d.CreatedAt = fromNanos(created)
	if deleted.Valid {
		t := fromNanos(deleted.Int64)
		d.DeletedAt = &t
	}
	return &d, nil
}

// lockDeployment reads one deployment by id and locks its row until tx ends
// (FOR UPDATE on PostgreSQL; SQLite's single writer needs no row lock).
// Every transaction that changes a deployment's versions, pointer or domains
// takes this lock first: it is what serialises them.
func (s *Store) lockDeployment(ctx context.Context, tx *wtx, id string) (*meta.Deployment, error) {
	return scanDeployment(tx.QueryRowContext(ctx,
		s.q(`SELECT `+deploymentCols+` FROM deployments WHERE id = ?`+s.forUpdate), id))
}

// deploymentExists answers sql.ErrNoRows unless deployment id exists
// (deployments are never deleted).
func (s *Store) deploymentExists(ctx context.Context, q Querier, id string) error {
	var one int
	return q.QueryRowContext(ctx, s.q(`SELECT 1 FROM deployments WHERE id = ?`), id).Scan(&one)
}

func validKind(k string) bool {
	return k == meta.KindStatic || k == meta.KindOCI || k == meta.KindRootfs
}

// CreateDeployment fills d.ID (when empty), d.CreatedAt and, when zero,
// d.RetentionDays (30), and appends a "deployment.create" event. Empty name,
// unknown kind or negative retention: meta.ErrInvalid. Name or id taken:
// meta.ErrConflict.
func (s *Store) CreateDeployment(ctx context.Context, d *meta.Deployment, actor string) error {
	return s.createDeployment(ctx, d, actor, false)
}

// createDeployment is CreateDeployment; with policy (CreateDeploymentWithPolicy)
// a zero d.RetentionDays is stored as given and the event records
// keep_versions too.
func (s *Store) createDeployment(ctx context.Context, d *meta.Deployment, actor string, policy bool) error {
	nd, detail, err := s.prepareDeployment(d, policy)
	if err != nil {
		return s.mapErr("create deployment", err)
	}
	err = s.update(ctx, func(tx *wtx) error { return s.insertDeployment(ctx, tx, &nd, actor, detail) })
	if err != nil {
		return s.mapErr("create deployment "+quote(d.Name), err)
	}
	*d = nd
	return nil
}

// prepareDeployment validates d and returns the record to insert and the
// detail of its event.
func (s *Store) prepareDeployment(d *meta.Deployment, policy bool) (meta.Deployment, map[string]any, error) {
	switch {
	case d.Name == "":
		return meta.Deployment{}, nil, invalid("empty name")
	case !validKind(d.Kind):
		return meta.Deployment{}, nil, invalid("unknown kind %q", d.Kind)
	case d.RetentionDays < 0:
		return meta.Deployment{}, nil, invalid("negative retention_days")
	case d.KeepVersions < 0:
		return meta.Deployment{}, nil, invalid("negative keep_versions")
	case d.SourceRetentionDays < 0:
		return meta.Deployment{}, nil, invalid("negative source_retention_days")
	}
	nd := *d
	if nd.ID == "" {
		nd.ID = newID("dep_")
	}
	if nd.RetentionDays == 0 && !policy {
		nd.RetentionDays = DefaultRetentionDays
	}
	if nd.SourceRetentionDays == 0 {
		nd.SourceRetentionDays = meta.DefaultSourceRetentionDays
	}
	nd.ActiveVersionID = nil
	nd.ActivateOnPush = ""
	nd.CreatedAt = s.stamp()
	detail := map[string]any{"name": nd.Name, "kind": nd.Kind, "retention_days": nd.RetentionDays}
	if policy {
		detail["keep_versions"] = nd.KeepVersions
	}
	return nd, detail, nil
}

// insertDeployment inserts nd with its "deployment.create" event.
func (s *Store) insertDeployment(ctx context.Context, tx *wtx, nd *meta.Deployment, actor string, detail map[string]any) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO deployments (`+deploymentCols+`)
		VALUES (?, ?, ?, NULL, ?, ?, '', ?, NULL, ?, ?, ?, ?)`),
		nd.ID, nd.Name, nd.Kind, nd.RetentionDays, nd.KeepVersions, nd.CreatedAt.UnixNano(), nd.SPA, nd.CleanURLs, nd.ProxyRewrites,
		nd.SourceRetentionDays)
	if err != nil {
		return err
	}
	return s.appendEvent(ctx, tx, meta.Event{
		At: nd.CreatedAt, Actor: actor, Action: meta.ActionDeploymentCreate, DeploymentID: nd.ID,
	}, detail)
}

// GetDeployment finds a deployment by id or, failing that, by name.
func (s *Store) GetDeployment(ctx context.Context, idOrName string) (*meta.Deployment, error) {
	return readRow(ctx, s, "get deployment "+quote(idOrName), func(q Querier) (*meta.Deployment, error) {
		return scanDeployment(q.QueryRowContext(ctx, s.q(`SELECT `+deploymentCols+`
			FROM deployments WHERE id = ? OR name = ?
			ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1`), idOrName, idOrName, idOrName))
	})
}

// ListDeployments returns every deployment, ordered by name.
func (s *Store) ListDeployments(ctx context.Context) ([]meta.Deployment, error) {
	out, err := list(ctx, s, scanDeployment, `SELECT `+deploymentCols+` FROM deployments ORDER BY name`)
	return out, s.mapErr("list deployments", err)
}

// UpdateDeployment stores d.RetentionDays (zero means 30, negative is
// meta.ErrInvalid) for the deployment d.ID and refreshes *d from the stored
// record: other fields are not mutable and are overwritten. A change appends a
// "deployment.update" event with before/after. Unknown id: meta.ErrNotFound.
func (s *Store) UpdateDeployment(ctx context.Context, d *meta.Deployment, actor string) error {
	op := "update deployment " + quote(d.ID)
	if d.RetentionDays < 0 {
		return s.mapErr(op, invalid("negative retention_days"))
	}
	days := d.RetentionDays
	if days == 0 {
		days = DefaultRetentionDays
	}
	cur, err := setColumn(ctx, s, d.ID, actor, "retention_days",
		func(d *meta.Deployment) *int { return &d.RetentionDays }, days)
	if err != nil {
		return s.mapErr(op, err)
	}
	*d = *cur
	return nil
}

// setColumn stores v in column of the deployment id (its row locked) and in
// the record's field of it, with a "deployment.update" event
// {"before": {column: old}, "after": {column: v}} when it changes, and
// returns the record as stored. Errors are not mapped.
func setColumn[T comparable](ctx context.Context, s *Store, id, actor, column string,
	field func(*meta.Deployment) *T, v T) (*meta.Deployment, error) {
	var cur *meta.Deployment
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if cur, err = s.lockDeployment(ctx, tx, id); err != nil {
			return err
		}
		f := field(cur)
		if *f == v {
			return nil
		}
		before := *f
		*f = v
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE deployments SET `+column+` = ? WHERE id = ?`), v, cur.ID); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{
			At: s.stamp(), Actor: actor, Action: meta.ActionDeploymentUpdate, DeploymentID: cur.ID,
		}, map[string]any{
			"before": map[string]T{column: before},
			"after":  map[string]T{column: v},
		})
	})
	return cur, err
}

// DeleteDeployment archives every active or ready version, clears the pointer and
// sets deleted_at, with a "deployment.delete" event; domains pointing at
// the deployment answer meta.ErrConflict unless force removes them (a
// "domain.remove" event each). Already deleted: no change.
func (s *Store) DeleteDeployment(ctx context.Context, id string, force bool, actor string) (*meta.Deployment, error) {
	op := "delete deployment " + quote(id)
	var d *meta.Deployment
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if d, err = s.lockDeployment(ctx, tx, id); err != nil {
			return err
		}
		if d.DeletedAt != nil {
			return nil
		}
		now := s.stamp()
		rows, err := tx.QueryContext(ctx, s.q(`SELECT hostname FROM domains WHERE deployment_id = ? ORDER BY hostname`), d.ID)
		if err != nil {
			return err
		}
		hosts, err := collectRows(rows, func(r scanner) (string, error) {
			var h string
			return h, r.Scan(&h)
		})
		if err != nil {
			return err
		}
		if len(hosts) > 0 && !force {
			return fmt.Errorf("%w: %d domains point at it (%s)", meta.ErrConflict, len(hosts), strings.Join(hosts, ", "))
		}
		for _, h := range hosts {
			if err := s.removeDomain(ctx, tx, d.ID, h, now, actor); err != nil {
				return err
			}
		}
		before := d.ActiveVersionID
		// Every version stops: the active one is archived now; ready ones
		// keep their archived_at (their publish time), so retention still
		// counts from there.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?,
			archived_at = CASE WHEN status = ? OR archived_at IS NULL THEN ? ELSE archived_at END
			WHERE deployment_id = ? AND status IN (?, ?)`),
			meta.StatusArchived, meta.StatusActive, now.UnixNano(), d.ID, meta.StatusActive, meta.StatusReady)
		if err != nil {
			return err
		}
		archived, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE deployments SET active_version_id = NULL, deleted_at = ? WHERE id = ?`),
			now.UnixNano(), d.ID); err != nil {
			return err
		}
		d.ActiveVersionID, d.DeletedAt = nil, &now
		return s.appendEvent(ctx, tx, meta.Event{
			At: now, Actor: actor, Action: meta.ActionDeploymentDelete, DeploymentID: d.ID,
		}, map[string]any{"name": d.Name, "before": before, "domains_removed": hosts, "versions_archived": archived})
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return d, nil
}

// undelete clears deleted_at of d (locked by tx), as a publish to a deleted
// deployment does.
func (s *Store) undelete(ctx context.Context, tx *wtx, d *meta.Deployment) error {
	if d.DeletedAt == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE deployments SET deleted_at = NULL WHERE id = ?`), d.ID)
	d.DeletedAt = nil
	return err
}
