package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultVersionLimit is the page size of ListVersions when the caller sets none.
const DefaultVersionLimit = 100

const versionCols = `id, deployment_id, version_number, status, source_sha256, artifact_uri,
	artifact_sha256, manifest_files, manifest_total_bytes, manifest_entrypoint,
	created_at, archived_at, collected_at, runtime, warnings, source_snapshot, build, rebuild`

func scanVersion(row scanner) (*meta.Version, error) {
	var (
		v                   meta.Version
		created             int64
		archived, collected *int64
		runtime             *string
		warnings            string
		build, rebuild      *string
	)
	err := row.Scan(&v.ID, &v.DeploymentID, &v.VersionNumber, &v.Status, &v.SourceSHA256,
		&v.ArtifactURI, &v.ArtifactSHA256, &v.ArtifactManifest.Files, &v.ArtifactManifest.TotalBytes,
		&v.ArtifactManifest.Entrypoint, &created, &archived, &collected, &runtime, &warnings, &v.SourceSnapshot, &build, &rebuild)
	if err != nil {
		return nil, err
	}
	if runtime != nil {
		v.Runtime = new(meta.Runtime)
		if err := json.Unmarshal([]byte(*runtime), v.Runtime); err != nil {
			return nil, fmt.Errorf("version %s: runtime: %w", v.ID, err)
		}
	}
	if warnings != "" {
		if err := json.Unmarshal([]byte(warnings), &v.Warnings); err != nil {
			return nil, fmt.Errorf("version %s: warnings: %w", v.ID, err)
		}
	}
	if build != nil {
		v.Build = new(meta.VersionBuild)
		if err := json.Unmarshal([]byte(*build), v.Build); err != nil {
			return nil, fmt.Errorf("version %s: build: %w", v.ID, err)
		}
	}
	if rebuild != nil {
		v.Rebuild = new(meta.Rebuild)
		if err := json.Unmarshal([]byte(*rebuild), v.Rebuild); err != nil {
			return nil, fmt.Errorf("version %s: rebuild: %w", v.ID, err)
		}
	}
	v.CreatedAt = fromNanos(created)
	v.ArchivedAt = nullTime(archived)
	v.CollectedAt = nullTime(collected)
	return &v, nil
}

func (s *Store) versionByID(ctx context.Context, q Querier, id string) (*meta.Version, error) {
	return scanVersion(q.QueryRowContext(ctx, s.q(`SELECT `+versionCols+` FROM versions WHERE id = ?`), id))
}

func (s *Store) versionByNumber(ctx context.Context, q Querier, depID string, n int64) (*meta.Version, error) {
	return scanVersion(q.QueryRowContext(ctx, s.q(`SELECT `+versionCols+`
		FROM versions WHERE deployment_id = ? AND version_number = ?`), depID, n))
}

// GetVersion finds a version by id. Missing: meta.ErrNotFound.
func (s *Store) GetVersion(ctx context.Context, id string) (*meta.Version, error) {
	return readRow(ctx, s, "get version "+quote(id), func(q Querier) (*meta.Version, error) {
		return s.withTags(ctx, q)(s.versionByID(ctx, q, id))
	})
}

// GetVersionByNumber finds version n of a deployment. Missing: meta.ErrNotFound.
func (s *Store) GetVersionByNumber(ctx context.Context, deploymentID string, n int64) (*meta.Version, error) {
	return readRow(ctx, s, fmt.Sprintf("get version %q v%d", deploymentID, n), func(q Querier) (*meta.Version, error) {
		return s.withTags(ctx, q)(s.versionByNumber(ctx, q, deploymentID, n))
	})
}

// withTags fills the tags of a version just read.
func (s *Store) withTags(ctx context.Context, q Querier) func(*meta.Version, error) (*meta.Version, error) {
	return func(v *meta.Version, err error) (*meta.Version, error) {
		if err != nil {
			return nil, err
		}
		return v, s.fillTags(ctx, q, v.DeploymentID, []*meta.Version{v})
	}
}

// fillTags sets the Tags of vs, versions of one deployment: the tags of the
// deployment's own repository that point at each version's manifest.
func (s *Store) fillTags(ctx context.Context, q Querier, deploymentID string, vs []*meta.Version) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT t.digest, t.tag FROM oci_tags t
		JOIN deployments d ON t.repository = d.name AND d.kind = 'oci'
		WHERE d.id = ? ORDER BY t.tag`), deploymentID)
	if err != nil {
		return err
	}
	defer rows.Close()
	byDigest := map[string][]string{}
	for rows.Next() {
		var d, tag string
		if err := rows.Scan(&d, &tag); err != nil {
			return err
		}
		byDigest[d] = append(byDigest[d], tag)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range vs {
		v.Tags = byDigest["sha256:"+v.ArtifactSHA256]
	}
	return nil
}

// ListVersions returns the deployment's versions newest first, with
// version_number < before (before <= 0: no bound), at most limit (<= 0:
// DefaultVersionLimit). Unknown deployment: meta.ErrNotFound.
func (s *Store) ListVersions(ctx context.Context, deploymentID string, limit int, before int64) ([]meta.Version, error) {
	op := "list versions " + quote(deploymentID)
	if err := s.read(ctx, func(q Querier) error { return s.deploymentExists(ctx, q, deploymentID) }); err != nil {
		return nil, s.mapErr(op, err)
	}
	if limit <= 0 {
		limit = DefaultVersionLimit
	}
	query, args := `SELECT `+versionCols+` FROM versions WHERE deployment_id = ?`, []any{deploymentID}
	if before > 0 {
		query, args = query+` AND version_number < ?`, append(args, before)
	}
	out, err := list(ctx, s, scanVersion, query+` ORDER BY version_number DESC LIMIT ?`, append(args, limit)...)
	if err == nil && len(out) > 0 {
		ptrs := make([]*meta.Version, len(out))
		for i := range out {
			ptrs[i] = &out[i]
		}
		err = s.read(ctx, func(q Querier) error { return s.fillTags(ctx, q, deploymentID, ptrs) })
	}
	return out, s.mapErr(op, err)
}

// PreviousActive returns the version activated most recently, other than the
// current active one, even if it has since been collected (activating it then
// answers meta.ErrGone). Unknown deployment or no such version: meta.ErrNotFound.
func (s *Store) PreviousActive(ctx context.Context, deploymentID string) (*meta.Version, error) {
	return readRow(ctx, s, "previous active version of "+quote(deploymentID), func(q Querier) (*meta.Version, error) {
		// One statement, one snapshot. activated_at is strictly increasing
		// per deployment (see activate).
		return scanVersion(q.QueryRowContext(ctx, s.q(`SELECT `+versionCols+` FROM versions
			WHERE deployment_id = ? AND activated_at IS NOT NULL
			  AND id <> COALESCE((SELECT active_version_id FROM deployments WHERE id = ?), '')
			ORDER BY activated_at DESC LIMIT 1`), deploymentID, deploymentID))
	})
}

const releaseCols = `sha256, kind, size_bytes, uri, tree_sha256, created_at, collected_at`

func (s *Store) releaseBySHA(ctx context.Context, q Querier, sha string) (*meta.Release, error) {
	var (
		r         meta.Release
		created   int64
		collected *int64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT `+releaseCols+` FROM releases WHERE sha256 = ?`), sha).
		Scan(&r.SHA256, &r.Kind, &r.SizeBytes, &r.URI, &r.TreeSHA256, &created, &collected)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromNanos(created)
	r.CollectedAt = nullTime(collected)
	return &r, nil
}

// GetRelease finds a release by its sha256 (hex). Missing: meta.ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, sha256 string) (*meta.Release, error) {
	return readRow(ctx, s, "get release "+quote(sha256), func(q Querier) (*meta.Release, error) {
		return s.releaseBySHA(ctx, q, sha256)
	})
}

// encodeWarnings is the stored form of a version's warnings: ” for none.
func encodeWarnings(w []string) string {
	if len(w) == 0 {
		return ""
	}
	b, _ := json.Marshal(w)
	return string(b)
}
