package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/cairnhq/cairn/internal/meta"
)

var _ meta.Registry = (*Store)(nil)

// PutOCIRepository creates r unless a repository of that name exists, and
// refreshes *r from the stored row. Unknown deployment: meta.ErrNotFound. The
// name taken by another deployment: meta.ErrConflict.
func (s *Store) PutOCIRepository(ctx context.Context, r *meta.OCIRepository) error {
	op := "put oci repository " + quote(r.Name)
	if r.Name == "" {
		return mapErr(op, invalid("empty repository name"))
	}
	var cur *meta.OCIRepository
	err := s.update(ctx, func(tx *sql.Tx) error {
		var err error
		cur, err = s.ociRepository(ctx, tx, r.Name)
		if err == nil {
			if cur.DeploymentID != r.DeploymentID {
				return meta.ErrConflict
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := s.deploymentByID(ctx, tx, r.DeploymentID); err != nil {
			return err
		}
		cur = &meta.OCIRepository{Name: r.Name, DeploymentID: r.DeploymentID, CreatedAt: s.stamp()}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO oci_repositories (name, deployment_id, created_at)
			VALUES (?, ?, ?)`), cur.Name, cur.DeploymentID, cur.CreatedAt.UnixNano())
		return err
	})
	if err != nil {
		return mapErr(op, err)
	}
	*r = *cur
	return nil
}

func (s *Store) ociRepository(ctx context.Context, q querier, name string) (*meta.OCIRepository, error) {
	var (
		r       meta.OCIRepository
		created int64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT name, deployment_id, created_at
		FROM oci_repositories WHERE name = ?`), name).Scan(&r.Name, &r.DeploymentID, &created)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromNanos(created)
	return &r, nil
}

// GetOCIRepository finds a repository by name. Missing: meta.ErrNotFound.
func (s *Store) GetOCIRepository(ctx context.Context, name string) (*meta.OCIRepository, error) {
	r, err := s.ociRepository(ctx, s.r, name)
	if err != nil {
		return nil, mapErr("get oci repository "+quote(name), err)
	}
	return r, nil
}

// requireRepository returns meta.ErrNotFound unless the repository exists.
func (s *Store) requireRepository(ctx context.Context, tx *sql.Tx, name string) error {
	_, err := s.ociRepository(ctx, tx, name)
	return err
}

// LinkOCIBlob lets repo serve b. Linking again changes nothing. Unknown
// repository: meta.ErrNotFound.
func (s *Store) LinkOCIBlob(ctx context.Context, repo string, b meta.OCIBlob) error {
	op := "link oci blob " + quote(b.Digest) + " to " + quote(repo)
	if b.Digest == "" || b.Size < 0 {
		return mapErr(op, invalid("empty digest or negative size"))
	}
	err := s.update(ctx, func(tx *sql.Tx) error {
		if err := s.requireRepository(ctx, tx, repo); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_blobs (repository, digest, size, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING`),
			repo, b.Digest, b.Size, s.stamp().UnixNano())
		return err
	})
	return mapErr(op, err)
}

// GetOCIBlob returns the blob if repo may serve it. Otherwise meta.ErrNotFound.
func (s *Store) GetOCIBlob(ctx context.Context, repo, digest string) (*meta.OCIBlob, error) {
	b := meta.OCIBlob{Digest: digest}
	err := s.r.QueryRowContext(ctx, s.q(`SELECT size FROM oci_blobs WHERE repository = ? AND digest = ?`),
		repo, digest).Scan(&b.Size)
	if err != nil {
		return nil, mapErr("get oci blob "+quote(digest)+" in "+quote(repo), err)
	}
	return &b, nil
}

// OCIBlobRepositories lists, by name, the repositories that hold the digest
// as a blob or as a manifest.
func (s *Store) OCIBlobRepositories(ctx context.Context, digest string) ([]string, error) {
	op := "repositories of oci blob " + quote(digest)
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT repository FROM oci_blobs WHERE digest = ?
		UNION SELECT repository FROM oci_manifests WHERE digest = ?
		ORDER BY repository`), digest, digest)
	if err != nil {
		return nil, mapErr(op, err)
	}
	return scanStrings(op, rows)
}

// UnlinkOCIBlob removes the link between repo and the blob. Not linked:
// meta.ErrNotFound.
func (s *Store) UnlinkOCIBlob(ctx context.Context, repo, digest string) error {
	err := s.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_blobs WHERE repository = ? AND digest = ?`),
			repo, digest)
		return affected(res, err)
	})
	return mapErr("unlink oci blob "+quote(digest)+" from "+quote(repo), err)
}

// SetOCIAnonymousPull stores the deployment's anonymous-pull flag. Unknown
// deployment: meta.ErrNotFound.
func (s *Store) SetOCIAnonymousPull(ctx context.Context, deploymentID string, allow bool) error {
	v := 0
	if allow {
		v = 1
	}
	err := s.update(ctx, func(tx *sql.Tx) error {
		if _, err := s.deploymentByID(ctx, tx, deploymentID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_deployment_settings (deployment_id, anonymous_pull)
			VALUES (?, ?) ON CONFLICT (deployment_id) DO UPDATE SET anonymous_pull = excluded.anonymous_pull`),
			deploymentID, v)
		return err
	})
	return mapErr("set anonymous pull of "+quote(deploymentID), err)
}

// OCIAnonymousPull reports the deployment's anonymous-pull flag (false when
// never set or for an unknown deployment).
func (s *Store) OCIAnonymousPull(ctx context.Context, deploymentID string) (bool, error) {
	var v int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT anonymous_pull FROM oci_deployment_settings
		WHERE deployment_id = ?`), deploymentID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, mapErr("anonymous pull of "+quote(deploymentID), err)
	}
	return v == 1, nil
}

// affected turns "no row changed" into sql.ErrNoRows (meta.ErrNotFound).
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

func scanStrings(op string, rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, v)
	}
	return out, mapErr(op, rows.Err())
}
