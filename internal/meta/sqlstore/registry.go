package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// The registry tables (migration 0002) under PostgreSQL's concurrency.
// Repositories are never deleted, so a row once read stays. Rows that two
// writers may create at once (repositories, blob links, manifests, tags,
// settings) are written with INSERT … ON CONFLICT, which waits for the other
// writer instead of failing on the unique key. Names and digests are ordered
// with COLLATE "C" on PostgreSQL: byte-wise, as SQLite orders them by
// default, whatever the database's collation.

func (s *Store) ociRepository(ctx context.Context, q Querier, name string) (*meta.OCIRepository, error) {
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

// PutOCIRepository creates r unless a repository of that name exists, and
// refreshes *r from the stored row. Concurrent puts of a new name create it
// once. Unknown deployment: meta.ErrNotFound. The name taken by another
// deployment: meta.ErrConflict.
func (s *Store) PutOCIRepository(ctx context.Context, r *meta.OCIRepository) error {
	op := "put oci repository " + quote(r.Name)
	if r.Name == "" {
		return s.mapErr(op, invalid("empty repository name"))
	}
	var cur *meta.OCIRepository
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		cur, err = s.ociRepository(ctx, tx, r.Name)
		if errors.Is(err, sql.ErrNoRows) {
			if err := s.deploymentExists(ctx, tx, r.DeploymentID); err != nil {
				return err
			}
			// Another transaction may be inserting the name: ON CONFLICT
			// waits for it, and the next statement sees its row.
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_repositories (name, deployment_id, created_at)
				VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`),
				r.Name, r.DeploymentID, s.stamp().UnixNano()); err != nil {
				return err
			}
			cur, err = s.ociRepository(ctx, tx, r.Name)
		}
		if err != nil {
			return err
		}
		if cur.DeploymentID != r.DeploymentID {
			return meta.ErrConflict
		}
		return nil
	})
	if err != nil {
		return s.mapErr(op, err)
	}
	*r = *cur
	return nil
}

// GetOCIRepository finds a repository by name. Missing: meta.ErrNotFound.
func (s *Store) GetOCIRepository(ctx context.Context, name string) (*meta.OCIRepository, error) {
	return readRow(ctx, s, "get oci repository "+quote(name), func(q Querier) (*meta.OCIRepository, error) {
		return s.ociRepository(ctx, q, name)
	})
}

// ListOCIRepositories returns at most n (n <= 0: all) repository names
// after last in byte-wise lexical order (COLLATE "C", whatever the
// database's collation).
func (s *Store) ListOCIRepositories(ctx context.Context, last string, n int) ([]string, error) {
	out, err := s.listPage(ctx, `SELECT name FROM oci_repositories WHERE TRUE`, "name", nil, last, n)
	return out, s.mapErr("list oci repositories", err)
}

// requireRepository answers sql.ErrNoRows (meta.ErrNotFound) unless the
// repository exists.
func (s *Store) requireRepository(ctx context.Context, q Querier, name string) error {
	var one int
	return q.QueryRowContext(ctx, s.q(`SELECT 1 FROM oci_repositories WHERE name = ?`), name).Scan(&one)
}

// LinkOCIBlob lets repo serve b. Linking again, also concurrently, changes
// nothing. Unknown repository: meta.ErrNotFound.
func (s *Store) LinkOCIBlob(ctx context.Context, repo string, b meta.OCIBlob) error {
	op := "link oci blob " + quote(b.Digest) + " to " + quote(repo)
	if b.Digest == "" || b.Size < 0 {
		return s.mapErr(op, invalid("empty digest or negative size"))
	}
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.requireRepository(ctx, tx, repo); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_blobs (repository, digest, size, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING`),
			repo, b.Digest, b.Size, s.stamp().UnixNano())
		return err
	})
	return s.mapErr(op, err)
}

// GetOCIBlob returns the blob if repo may serve it. Otherwise meta.ErrNotFound.
func (s *Store) GetOCIBlob(ctx context.Context, repo, digest string) (*meta.OCIBlob, error) {
	b := meta.OCIBlob{Digest: digest}
	err := s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT size FROM oci_blobs WHERE repository = ? AND digest = ?`),
			repo, digest).Scan(&b.Size)
	})
	if err != nil {
		return nil, s.mapErr("get oci blob "+quote(digest)+" in "+quote(repo), err)
	}
	return &b, nil
}

// OCIBlobRepositories lists, by name, the repositories that hold the digest
// as a blob or as a manifest (one statement, one snapshot).
func (s *Store) OCIBlobRepositories(ctx context.Context, digest string) ([]string, error) {
	out, err := s.listStrings(ctx, `SELECT repository FROM (
		SELECT repository FROM oci_blobs WHERE digest = ?
		UNION SELECT repository FROM oci_manifests WHERE digest = ?) AS held
		ORDER BY repository`+s.collateC, digest, digest)
	return out, s.mapErr("repositories of oci blob "+quote(digest), err)
}

// UnlinkOCIBlob removes the link between repo and the blob. Not linked:
// meta.ErrNotFound.
func (s *Store) UnlinkOCIBlob(ctx context.Context, repo, digest string) error {
	err := s.update(ctx, func(tx *wtx) error {
		tag, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_blobs WHERE repository = ? AND digest = ?`),
			repo, digest)
		return rowsOrNotFound(affected(tag), err)
	})
	return s.mapErr("unlink oci blob "+quote(digest)+" from "+quote(repo), err)
}

// SetOCIAnonymousPull stores the deployment's anonymous-pull flag. Unknown
// deployment: meta.ErrNotFound.
func (s *Store) SetOCIAnonymousPull(ctx context.Context, deploymentID string, allow bool) error {
	v := 0
	if allow {
		v = 1
	}
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.deploymentExists(ctx, tx, deploymentID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_deployment_settings (deployment_id, anonymous_pull)
			VALUES (?, ?) ON CONFLICT (deployment_id) DO UPDATE SET anonymous_pull = excluded.anonymous_pull`),
			deploymentID, v)
		return err
	})
	return s.mapErr("set anonymous pull of "+quote(deploymentID), err)
}

// OCIAnonymousPull reports the deployment's anonymous-pull flag (false when
// never set or for an unknown deployment).
func (s *Store) OCIAnonymousPull(ctx context.Context, deploymentID string) (bool, error) {
	var v int
	err := s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT anonymous_pull FROM oci_deployment_settings
			WHERE deployment_id = ?`), deploymentID).Scan(&v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.mapErr("anonymous pull of "+quote(deploymentID), err)
	}
	return v == 1, nil
}

// OCIVersionByDigest returns the newest version of the deployment whose
// release is the manifest digest and that is not collected (meta.Registry).
func (s *Store) OCIVersionByDigest(ctx context.Context, deploymentID, digest string) (*meta.Version, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return nil, s.mapErr("version of "+quote(digest), invalid("%q is not a sha256 digest", digest))
	}
	return readRow(ctx, s, "version of "+quote(digest), func(q Querier) (*meta.Version, error) {
		return s.withTags(ctx, q)(scanVersion(q.QueryRowContext(ctx, s.q(`SELECT `+versionCols+` FROM versions
			WHERE deployment_id = ? AND artifact_sha256 = ? AND collected_at IS NULL
			ORDER BY version_number DESC LIMIT 1`), deploymentID, hex)))
	})
}

// SetOCIActivateOnPush stores the deployment's activate_on_push tag, with a
// "deployment.update" event when it changes (meta.Registry).
func (s *Store) SetOCIActivateOnPush(ctx context.Context, deploymentID, tag, actor string) (*meta.Deployment, error) {
	cur, err := setColumn(ctx, s, deploymentID, actor, "activate_on_push",
		func(d *meta.Deployment) *string { return &d.ActivateOnPush }, tag)
	if err != nil {
		return nil, s.mapErr("set activate_on_push of "+quote(deploymentID), err)
	}
	return cur, nil
}
