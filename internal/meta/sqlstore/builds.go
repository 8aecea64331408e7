package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Builds (0028): builds, rebuilds and restores, source snapshots and
// rebuild verdicts (meta.Builds).

var _ meta.Builds = (*Store)(nil)

const buildCols = `id, deployment, kind, version_number, state, pin_host, host, spec, actor, created_at,
	started_at, finished_at, duration_ms, exit_code, error, artifact_sha256, log_sha256, log_bytes, verdict, differs`

func scanBuild(row scanner) (*meta.Build, error) {
	var (
		b                 meta.Build
		spec, differs     string
		created           int64
		started, finished *int64
		exit              *int64
	)
	if err := row.Scan(&b.ID, &b.Deployment, &b.Kind, &b.VersionNumber, &b.State, &b.PinHost, &b.Host, &spec, &b.Actor,
		&created, &started, &finished, &b.DurationMS, &exit, &b.Error, &b.ArtifactSHA256, &b.LogSHA256, &b.LogBytes,
		&b.Verdict, &differs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &b.BuildSpec); err != nil {
		return nil, fmt.Errorf("build %s: spec: %w", b.ID, err)
	}
	if differs != "" {
		if err := json.Unmarshal([]byte(differs), &b.Differs); err != nil {
			return nil, fmt.Errorf("build %s: differs: %w", b.ID, err)
		}
	}
	if exit != nil {
		b.ExitCode = new(int(*exit))
	}
	b.CreatedAt, b.StartedAt, b.FinishedAt = fromNanos(created), nullTime(started), nullTime(finished)
	return &b, nil
}

func validBuildKind(k string) bool {
	return k == meta.BuildKindBuild || k == meta.BuildKindRebuild || k == meta.BuildKindRestore
}

// CreateBuild stores b, queued.
func (s *Store) CreateBuild(ctx context.Context, b *meta.Build) error {
	op := "create build of " + quote(b.Deployment)
	switch {
	case b.Deployment == "":
		return s.mapErr(op, invalid("empty deployment"))
	case !validBuildKind(b.Kind):
		return s.mapErr(op, invalid("unknown build kind %q", b.Kind))
	case !isSHA256(b.SourceSHA256) || !isSHA256(b.Builder) || !isSHA256(b.SourceTree) || !isSHA256(b.BuilderTree):
		return s.mapErr(op, invalid("source, builder and their trees must be sha256 hex digests"))
	}
	spec, err := json.Marshal(b.BuildSpec)
	if err != nil {
		return err
	}
	nb := *b
	nb.ID, nb.State, nb.Host = newID("bld_"), meta.BuildQueued, ""
	nb.CreatedAt = s.stamp()
	err = s.update(ctx, func(tx *wtx) error {
		// A queued build roots its snapshot and builder: under their
		// locks, a collection commits before (then they are gone) or
		// finds this root.
		if err := s.liveReleases(ctx, tx, nb.SourceSHA256, nb.Builder); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO builds (id, deployment, kind, version_number, state, pin_host,
			source_sha256, builder_sha256, spec, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			nb.ID, nb.Deployment, nb.Kind, nb.VersionNumber, nb.State, nb.PinHost, nb.SourceSHA256, nb.Builder,
			string(spec), nb.Actor, nb.CreatedAt.UnixNano())
		return err
	})
	if err != nil {
		return s.mapErr(op, err)
	}
	*b = nb
	return nil
}

// liveReleases takes the sha256 locks of shas and fails with
// meta.ErrGone if any of them has no release row or a collected one.
func (s *Store) liveReleases(ctx context.Context, tx *wtx, shas ...string) error {
	if err := s.lockSHAs(ctx, tx, shas); err != nil {
		return err
	}
	for _, sha := range shas {
		rel, err := s.releaseBySHA(ctx, tx, sha)
		if errors.Is(err, sql.ErrNoRows) || err == nil && rel.CollectedAt != nil {
			return fmt.Errorf("%w: release %s is not stored", meta.ErrGone, sha)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// GetBuild finds a build by id.
func (s *Store) GetBuild(ctx context.Context, id string) (*meta.Build, error) {
	return readRow(ctx, s, "get build "+quote(id), func(q Querier) (*meta.Build, error) {
		return scanBuild(q.QueryRowContext(ctx, s.q(`SELECT `+buildCols+` FROM builds WHERE id = ?`), id))
	})
}

// ListBuilds lists a deployment's builds, newest first.
func (s *Store) ListBuilds(ctx context.Context, deployment string, limit int) ([]meta.Build, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := list(ctx, s, scanBuild, `SELECT `+buildCols+` FROM builds WHERE deployment = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, deployment, limit)
	if err != nil {
		return nil, s.mapErr("list builds of "+quote(deployment), err)
	}
	return out, nil
}

// BuildLog returns the kept log of a build.
func (s *Store) BuildLog(ctx context.Context, id string) (string, error) {
	return readRow(ctx, s, "get build log "+quote(id), func(q Querier) (string, error) {
		var l string
		err := q.QueryRowContext(ctx, s.q(`SELECT log FROM builds WHERE id = ?`), id).Scan(&l)
		return l, err
	})
}

// ClaimBuild gives the oldest queued build host may run to host. A host
// runs one build at a time and claims only when idle: a build still
// running on it was cut short (its agent restarted) and fails first. An
// idle host polls often: a read finds out first whether there is
// anything to write.
func (s *Store) ClaimBuild(ctx context.Context, host string) (*meta.Build, error) {
	op := "claim a build for host " + quote(host)
	var work bool
	err := s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM builds WHERE state = ? AND (pin_host = '' OR pin_host = ?))
			OR EXISTS (SELECT 1 FROM builds WHERE state IN (?, ?) AND host = ?)`),
			meta.BuildQueued, host, meta.BuildRunning, meta.BuildFinishing, host).Scan(&work)
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	if !work {
		return nil, s.mapErr(op, sql.ErrNoRows)
	}
	var b *meta.Build
	err = s.update(ctx, func(tx *wtx) error {
		b = nil
		if _, err := s.failHostBuilds(ctx, tx, host, "the host's agent restarted while the build ran"); err != nil {
			return err
		}
		next, err := scanBuild(tx.QueryRowContext(ctx, s.q(`SELECT `+buildCols+` FROM builds
			WHERE state = ? AND (pin_host = '' OR pin_host = ?) ORDER BY created_at, id LIMIT 1`+s.forUpdate+s.skipLocked),
			meta.BuildQueued, host))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.stamp()
		n, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET state = ?, host = ?, started_at = ? WHERE id = ? AND state = ?`),
			meta.BuildRunning, host, now.UnixNano(), next.ID, meta.BuildQueued)
		if err := rowsOrNotFound(affected(n), err); err != nil {
			return err
		}
		next.State, next.Host, next.StartedAt = meta.BuildRunning, host, &now
		b = next
		return nil
	})
	if err == nil && b == nil {
		err = sql.ErrNoRows
	}
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return b, nil
}

// StartFinishing moves a build running on host to finishing.
func (s *Store) StartFinishing(ctx context.Context, id, host string) (*meta.Build, error) {
	var b *meta.Build
	err := s.update(ctx, func(tx *wtx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET state = ? WHERE id = ? AND host = ? AND state = ?`),
			meta.BuildFinishing, id, host, meta.BuildRunning)
		if err != nil {
			return err
		}
		if affected(r) == 0 {
			return fmt.Errorf("%w: build %s is not running on host %s", meta.ErrConflict, id, host)
		}
		b, err = scanBuild(tx.QueryRowContext(ctx, s.q(`SELECT `+buildCols+` FROM builds WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, s.mapErr("start finishing build "+quote(id), err)
	}
	return b, nil
}

// SetBuildVersion records the version a build made.
func (s *Store) SetBuildVersion(ctx context.Context, id string, n int64) error {
	err := s.update(ctx, func(tx *wtx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET version_number = ? WHERE id = ?`), n, id)
		return rowsOrNotFound(affected(r), err)
	})
	return s.mapErr("set the version of build "+quote(id), err)
}

// FinishBuild records how a running build ended, with its event.
func (s *Store) FinishBuild(ctx context.Context, id, host string, end meta.BuildEnd) (*meta.Build, error) {
	op := "finish build " + quote(id)
	if end.State != meta.BuildSucceeded && end.State != meta.BuildFailed {
		return nil, s.mapErr(op, invalid("state %q is neither %q nor %q", end.State, meta.BuildSucceeded, meta.BuildFailed))
	}
	var b *meta.Build
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if b, err = s.finish(ctx, tx, id, host, end); err != nil {
			return err
		}
		return s.buildEvent(ctx, tx, b)
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return b, nil
}

// finish writes end into running build id of host and returns the record.
func (s *Store) finish(ctx context.Context, tx *wtx, id, host string, end meta.BuildEnd) (*meta.Build, error) {
	var differs string
	if len(end.Differs) > 0 {
		b, err := json.Marshal(end.Differs)
		if err != nil {
			return nil, err
		}
		differs = string(b)
	}
	var exit *int64
	if end.ExitCode != nil {
		exit = new(int64(*end.ExitCode))
	}
	now := s.stamp()
	r, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET state = ?, finished_at = ?, duration_ms = ?, exit_code = ?,
		error = ?, artifact_sha256 = ?, log = ?, log_sha256 = ?, log_bytes = ?, verdict = ?, differs = ?
		WHERE id = ? AND state IN (?, ?) AND host = ?`),
		end.State, now.UnixNano(), end.DurationMS, exit, end.Error, end.ArtifactSHA256, cleanLog(end.Log),
		end.LogSHA256, end.LogBytes, end.Verdict, differs, id, meta.BuildRunning, meta.BuildFinishing, host)
	if n := affected(r); err == nil && n == 0 {
		return nil, fmt.Errorf("%w: build %s is not running on host %s", meta.ErrConflict, id, host)
	} else if err != nil {
		return nil, err
	}
	return scanBuild(tx.QueryRowContext(ctx, s.q(`SELECT `+buildCols+` FROM builds WHERE id = ?`), id))
}

// cleanLog makes a log storable as text in both backends.
func cleanLog(l string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(l, "\uFFFD"), "\x00", "")
}

// buildEvent appends the ActionBuild event of a build that ended.
func (s *Store) buildEvent(ctx context.Context, tx *wtx, b *meta.Build) error {
	var depID string
	if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM deployments WHERE name = ?`), b.Deployment).Scan(&depID); err != nil &&
		!errors.Is(err, sql.ErrNoRows) {
		return err
	}
	detail := map[string]any{"build_id": b.ID, "kind": b.Kind, "state": b.State, "deployment": b.Deployment}
	if b.Error != "" {
		detail["error"] = b.Error
	}
	if b.ArtifactSHA256 != "" {
		detail["artifact_sha256"] = b.ArtifactSHA256
	}
	if b.VersionNumber != 0 {
		detail["version_number"] = b.VersionNumber
	}
	return s.appendEvent(ctx, tx, meta.Event{At: s.stamp(), Actor: b.Actor, Action: meta.ActionBuild, DeploymentID: depID,
		ReleaseSHA256: b.ArtifactSHA256}, detail)
}

// failHostBuilds fails, in tx, the builds running on host, with their
// events (MarkLostHosts calls it for every host it marks lost).
func (s *Store) failHostBuilds(ctx context.Context, tx *wtx, host, reason string) (int, error) {
	var ids []string
	if err := s.strings(ctx, tx, func(id string) { ids = append(ids, id) },
		`SELECT id FROM builds WHERE state IN (?, ?) AND host = ? ORDER BY id`, meta.BuildRunning, meta.BuildFinishing, host); err != nil {
		return 0, err
	}
	for _, id := range ids {
		b, err := s.finish(ctx, tx, id, host, meta.BuildEnd{State: meta.BuildFailed, Error: reason})
		if err != nil {
			return 0, err
		}
		if err := s.buildEvent(ctx, tx, b); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// expireBuilds fails, in tx, the builds queued longer than
// meta.BuildQueueTTL and those running or finishing longer than
// meta.BuildRunTTL after their claim (MarkLostHosts calls it).
func (s *Store) expireBuilds(ctx context.Context, tx *wtx) error {
	now := s.stamp()
	type stale struct{ id, host, state string }
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, host, state FROM builds WHERE (state = ? AND created_at < ?)
		OR (state IN (?, ?) AND started_at < ?) ORDER BY id`),
		meta.BuildQueued, now.Add(-meta.BuildQueueTTL).UnixNano(), meta.BuildRunning, meta.BuildFinishing,
		now.Add(-meta.BuildRunTTL).UnixNano())
	if err != nil {
		return err
	}
	list, err := collectRows(rows, func(r scanner) (stale, error) {
		var x stale
		return x, r.Scan(&x.id, &x.host, &x.state)
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		reason := fmt.Sprintf("no host ran it within %v", meta.BuildQueueTTL)
		if x.state != meta.BuildQueued {
			reason = fmt.Sprintf("its host did not finish it within %v", meta.BuildRunTTL)
		} else if _, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET state = ? WHERE id = ?`), meta.BuildRunning, x.id); err != nil {
			return err // finish takes running or finishing builds
		}
		b, err := s.finish(ctx, tx, x.id, x.host, meta.BuildEnd{State: meta.BuildFailed, Error: reason})
		if err != nil {
			return err
		}
		if err := s.buildEvent(ctx, tx, b); err != nil {
			return err
		}
	}
	return nil
}

// PutSourceRelease inserts a source snapshot's release unless known.
func (s *Store) PutSourceRelease(ctx context.Context, deployment string, rel meta.Release) (*meta.Release, error) {
	op := "put source release " + quote(rel.SHA256)
	if !isSHA256(rel.SHA256) || !isSHA256(rel.TreeSHA256) || deployment == "" {
		return nil, s.mapErr(op, invalid("a deployment, and sha256 and tree sha256 of 64 lowercase hex digits"))
	}
	var out *meta.Release
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.lockSHAs(ctx, tx, []string{rel.SHA256}); err != nil {
			return err
		}
		now := s.stamp().UnixNano()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO releases (`+releaseCols+`)
			VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (sha256) DO NOTHING`),
			rel.SHA256, meta.KindSource, rel.SizeBytes, rel.URI, rel.TreeSHA256, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = NULL, collecting_at = NULL, uri = ?
			WHERE sha256 = ? AND collected_at IS NOT NULL`), rel.URI, rel.SHA256); err != nil {
			return err
		}
		var err error
		if out, err = s.releaseBySHA(ctx, tx, rel.SHA256); err != nil {
			return err
		}
		if out.Kind != meta.KindSource && out.Kind != meta.KindStatic {
			return invalid("release %s is a %s release, not a snapshot", rel.SHA256, out.Kind)
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO source_owners (deployment, sha256) VALUES (?, ?)
			ON CONFLICT (deployment, sha256) DO NOTHING`), deployment, rel.SHA256)
		return err
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return out, nil
}

// SourceOwned reports whether deployment uploaded snapshot sha.
func (s *Store) SourceOwned(ctx context.Context, deployment, sha string) (bool, error) {
	return readRow(ctx, s, "source owner "+quote(deployment), func(q Querier) (bool, error) {
		var ok bool
		err := q.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM source_owners WHERE deployment = ? AND sha256 = ?)`),
			deployment, sha).Scan(&ok)
		return ok, err
	})
}

// RecordRebuild stores a version's rebuild verdict with its event.
func (s *Store) RecordRebuild(ctx context.Context, versionID string, r meta.Rebuild, actor string) error {
	op := "record the rebuild of version " + quote(versionID)
	if r.Verdict != meta.VerdictReproducible && r.Verdict != meta.VerdictDiffers {
		return s.mapErr(op, invalid("verdict %q", r.Verdict))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx *wtx) error {
		v, err := s.versionByID(ctx, tx, versionID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET rebuild = ? WHERE id = ?`), string(b), v.ID); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{At: s.stamp(), Actor: actor, Action: meta.ActionRebuild,
			DeploymentID: v.DeploymentID, VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256},
			map[string]any{"build_id": r.BuildID, "verdict": r.Verdict, "sha256": r.SHA256, "differs": r.Differs,
				"version_number": v.VersionNumber})
	})
	return s.mapErr(op, err)
}

// RestoreVersion revives a collected version's release, stored again.
func (s *Store) RestoreVersion(ctx context.Context, versionID, uri, buildID, actor string) (*meta.Version, error) {
	op := "restore version " + quote(versionID)
	var out *meta.Version
	err := s.update(ctx, func(tx *wtx) error {
		v, err := s.versionByID(ctx, tx, versionID)
		if err != nil {
			return err
		}
		if _, err := s.lockDeployment(ctx, tx, v.DeploymentID); err != nil {
			return err
		}
		if err := s.lockSHAs(ctx, tx, []string{v.ArtifactSHA256}); err != nil {
			return err
		}
		if v.CollectedAt == nil {
			return fmt.Errorf("%w: version %s is not collected", meta.ErrConflict, versionID)
		}
		now := s.stamp().UnixNano()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = NULL, collecting_at = NULL, uri = ?
			WHERE sha256 = ?`), uri, v.ArtifactSHA256); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, collected_at = NULL, archived_at = ?
			WHERE artifact_sha256 = ? AND deployment_id = ? AND collected_at IS NOT NULL`),
			meta.StatusArchived, now, v.ArtifactSHA256, v.DeploymentID); err != nil {
			return err
		}
		if err := s.appendEvent(ctx, tx, meta.Event{At: fromNanos(now), Actor: actor, Action: meta.ActionRestore,
			DeploymentID: v.DeploymentID, VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256},
			map[string]any{"build_id": buildID, "version_number": v.VersionNumber}); err != nil {
			return err
		}
		out, err = s.versionByID(ctx, tx, versionID)
		return err
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return out, nil
}

// AgeBuild moves a build's created_at and started_at back by d, so that
// the conformance suite can test the expiry without waiting (as
// MarkCollected lets it test collections).
func (s *Store) AgeBuild(ctx context.Context, id string, d time.Duration) error {
	err := s.update(ctx, func(tx *wtx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE builds SET created_at = created_at - ?,
			started_at = CASE WHEN started_at IS NULL THEN NULL ELSE started_at - ? END WHERE id = ?`),
			int64(d), int64(d), id)
		return rowsOrNotFound(affected(r), err)
	})
	return s.mapErr("age build "+quote(id), err)
}
