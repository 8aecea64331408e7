package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// CreateVersion publishes a version in one transaction: it locks the
// deployment's row, inserts the release unless one with that sha256 exists
// (an existing row is kept; if it had been collected, its bytes were stored
// again, so it is revived with the new URI), numbers the version max+1 within
// the deployment (consecutive under concurrent publishes: they queue on the
// lock), inserts it (status ready) with a "publish" event and, when
// nv.Activate, activates it as Activate does (an "activate" event). Unknown
// deployment: meta.ErrNotFound. Malformed sha256 or a release kind other than
// the deployment's: meta.ErrInvalid. With nv.NewDeployment the deployment is
// created first in the same transaction (name taken: meta.ErrConflict), so
// that a failed publish leaves no deployment behind.
func (s *Store) CreateVersion(ctx context.Context, nv meta.NewVersion) (*meta.Version, error) {
	op := "create version of " + quote(nv.DeploymentID)
	if !isSHA256(nv.Release.SHA256) {
		return nil, s.mapErr(op, invalid("release sha256 %q is not 64 lowercase hex digits", nv.Release.SHA256))
	}
	var (
		nd     meta.Deployment
		detail map[string]any
	)
	if nv.NewDeployment != nil {
		var err error
		if nd, detail, err = s.prepareDeployment(nv.NewDeployment, true); err != nil {
			return nil, s.mapErr(op, err)
		}
		op = "create deployment " + quote(nd.Name) + " with its first version"
	}
	var v *meta.Version
	err := s.update(ctx, func(tx *wtx) error {
		var (
			d   *meta.Deployment
			err error
		)
		if nv.SourceSnapshot {
			// The snapshot's sha256 lock first (the lock order): a
			// collection of it commits before, or finds this root.
			if err := s.liveReleases(ctx, tx, nv.SourceSHA256); err != nil {
				return err
			}
		}
		if nv.NewDeployment != nil {
			dep := nd // a retried transaction starts from the prepared record
			if err = s.insertDeployment(ctx, tx, &dep, nv.Actor, detail); err != nil {
				return err
			}
			d = &dep
		} else if d, err = s.lockDeployment(ctx, tx, nv.DeploymentID); err != nil {
			return err
		}
		if err := s.undelete(ctx, tx, d); err != nil { // a publish undeletes
			return err
		}
		rel, err := s.putRelease(ctx, tx, d, nv.Release)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(version_number), 0) + 1
			FROM versions WHERE deployment_id = ?`), d.ID).Scan(&n); err != nil {
			return err
		}
		now := s.stamp()
		v = &meta.Version{
			ID: newID("ver_"), DeploymentID: d.ID, VersionNumber: n, Status: meta.StatusReady,
			SourceSHA256: nv.SourceSHA256, ArtifactURI: rel.URI, ArtifactSHA256: rel.SHA256,
			ArtifactManifest: nv.Manifest, CreatedAt: now, ArchivedAt: &now, Warnings: nv.Warnings,
			Runtime: nv.Runtime, SourceSnapshot: nv.SourceSnapshot, Build: nv.Build,
		}
		runtime, err := jsonOrNull(nv.Runtime)
		if err != nil {
			return err
		}
		build, err := jsonOrNull(nv.Build)
		if err != nil {
			return err
		}
		m := v.ArtifactManifest
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO versions (`+versionCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL)`),
			v.ID, v.DeploymentID, v.VersionNumber, v.Status, v.SourceSHA256, v.ArtifactURI,
			v.ArtifactSHA256, m.Files, m.TotalBytes, m.Entrypoint, now.UnixNano(), now.UnixNano(), runtime,
			encodeWarnings(nv.Warnings), nv.SourceSnapshot, build); err != nil {
			return err
		}
		err = s.appendEvent(ctx, tx, meta.Event{
			At: now, Actor: nv.Actor, Action: meta.ActionPublish, DeploymentID: d.ID,
			VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256,
		}, map[string]any{"version_number": n, "source_sha256": v.SourceSHA256})
		if err != nil {
			return err
		}
		if err := s.fillTags(ctx, tx, d.ID, []*meta.Version{v}); err != nil {
			return err
		}
		if !nv.Activate {
			return nil
		}
		return s.activate(ctx, tx, d, v, now, nv.Actor, meta.ActionActivate)
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	if nv.NewDeployment != nil {
		if nv.Activate {
			nd.ActiveVersionID = &v.ID
		}
		*nv.NewDeployment = nd
	}
	return v, nil
}

// jsonOrNull is v as a JSON text, or nil (SQL NULL) for a nil pointer.
func jsonOrNull[T any](v *T) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return new(string(b)), nil
}

// putRelease inserts r unless its sha256 is known and returns the stored row,
// locked until tx ends. Concurrent inserts of one sha256 wait for each other
// (ON CONFLICT).
func (s *Store) putRelease(ctx context.Context, tx *wtx, d *meta.Deployment, r meta.Release) (*meta.Release, error) {
	if r.Kind == "" {
		r.Kind = d.Kind
	}
	if r.Kind != d.Kind {
		return nil, invalid("%s release for %s deployment %q", r.Kind, d.Kind, d.Name)
	}
	if r.TreeSHA256 != "" && !isSHA256(r.TreeSHA256) {
		return nil, invalid("tree sha256 %q is not 64 lowercase hex digits", r.TreeSHA256)
	}
	now := s.stamp().UnixNano()
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO releases (`+releaseCols+`)
		VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (sha256) DO NOTHING`),
		r.SHA256, r.Kind, r.SizeBytes, r.URI, r.TreeSHA256, now); err != nil {
		return nil, err
	}
	// Lock the row (after the deployment's: see lockRoots), so that a
	// collection of it in progress commits first and is revived here.
	if _, err := tx.ExecContext(ctx, s.q(`SELECT 1 FROM releases WHERE sha256 = ?`+s.forUpdate), r.SHA256); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = NULL, uri = ?
		WHERE sha256 = ? AND collected_at IS NOT NULL`), r.URI, r.SHA256); err != nil {
		return nil, err
	}
	stored, err := s.releaseBySHA(ctx, tx, r.SHA256)
	if err != nil {
		return nil, err
	}
	if stored.Kind == meta.KindSource && d.Kind == meta.KindStatic {
		// A snapshot is in the static format: the same bytes published as
		// a site make it a static release (its source roots stay).
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET kind = ? WHERE sha256 = ?`), meta.KindStatic, r.SHA256); err != nil {
			return nil, err
		}
		stored.Kind = meta.KindStatic
	}
	if stored.Kind != d.Kind {
		return nil, invalid("release %s is a %s release, deployment %q is %s", r.SHA256, stored.Kind, d.Name, d.Kind)
	}
	return stored, nil
}

// Activate makes version n the deployment's active version, in one
// transaction (holding the deployment's row lock) with its event; action is
// meta.ActionActivate (also when empty) or meta.ActionRollback, anything else
// is meta.ErrInvalid. The previously active version becomes archived.
// Activating the version that is already active changes nothing and appends
// no event. Unknown deployment or version: meta.ErrNotFound. Collected
// version: meta.ErrGone.
func (s *Store) Activate(ctx context.Context, deploymentID string, n int64, actor, action string) (*meta.Deployment, error) {
	if action == "" {
		action = meta.ActionActivate
	}
	op := fmt.Sprintf("%s %q v%d", action, deploymentID, n)
	if action != meta.ActionActivate && action != meta.ActionRollback {
		return nil, s.mapErr(op, invalid("action %q is neither %q nor %q", action, meta.ActionActivate, meta.ActionRollback))
	}
	var d *meta.Deployment
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if d, err = s.lockDeployment(ctx, tx, deploymentID); err != nil {
			return err
		}
		v, err := s.versionByNumber(ctx, tx, d.ID, n)
		if err != nil {
			return err
		}
		if v.CollectedAt != nil {
			return meta.ErrGone
		}
		if d.ActiveVersionID != nil && *d.ActiveVersionID == v.ID {
			return nil
		}
		return s.activate(ctx, tx, d, v, s.stamp(), actor, action)
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return d, nil
}

// activate points d (locked by tx) at v inside tx, archives the version it
// replaces, appends the event and updates d and v to match.
func (s *Store) activate(ctx context.Context, tx *wtx, d *meta.Deployment, v *meta.Version, now time.Time, actor, action string) error {
	before := d.ActiveVersionID
	if before != nil {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, archived_at = ?
			WHERE id = ? AND status = ?`),
			meta.StatusArchived, now.UnixNano(), *before, meta.StatusActive); err != nil {
			return err
		}
	}
	// activated_at orders activations for PreviousActive: keep it strictly
	// increasing even when the clock stands still or steps back.
	var last int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(activated_at), 0)
		FROM versions WHERE deployment_id = ?`), d.ID).Scan(&last); err != nil {
		return err
	}
	// Guarded by collected_at IS NULL (the meta.GC contract): a collection
	// of v that committed meanwhile makes this answer meta.ErrGone.
	tag, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, archived_at = NULL, activated_at = ?
		WHERE id = ? AND collected_at IS NULL`), meta.StatusActive, max(now.UnixNano(), last+1), v.ID)
	if err != nil {
		return err
	}
	if affected(tag) == 0 {
		return meta.ErrGone
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE deployments SET active_version_id = ? WHERE id = ?`),
		v.ID, d.ID); err != nil {
		return err
	}
	after := v.ID
	d.ActiveVersionID = &after
	v.Status, v.ArchivedAt = meta.StatusActive, nil
	return s.appendEvent(ctx, tx, meta.Event{
		At: now, Actor: actor, Action: action, DeploymentID: d.ID,
		VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256,
	}, change{Before: before, After: &after})
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
