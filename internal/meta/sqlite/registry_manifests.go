package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

const ociManifestCols = `repository, digest, media_type, size, subject, artifact_type, annotations, created_at`

func scanOCIManifest(row interface{ Scan(...any) error }) (*meta.OCIManifest, error) {
	var (
		m           meta.OCIManifest
		annotations string
		created     int64
	)
	err := row.Scan(&m.Repository, &m.Digest, &m.MediaType, &m.Size, &m.Subject, &m.ArtifactType,
		&annotations, &created)
	if err != nil {
		return nil, err
	}
	if annotations != "" {
		if err := json.Unmarshal([]byte(annotations), &m.Annotations); err != nil {
			return nil, err
		}
	}
	m.CreatedAt = fromNanos(created)
	return &m, nil
}

func (s *Store) ociManifest(ctx context.Context, q querier, repo, digest string) (*meta.OCIManifest, error) {
	return scanOCIManifest(q.QueryRowContext(ctx, s.q(`SELECT `+ociManifestCols+`
		FROM oci_manifests WHERE repository = ? AND digest = ?`), repo, digest))
}

// PutOCIManifest stores m unless its repository already has the digest, then
// refreshes *m from the stored row and, when tag is not empty, points tag at
// it, all in one transaction. Unknown repository: meta.ErrNotFound.
func (s *Store) PutOCIManifest(ctx context.Context, m *meta.OCIManifest, tag string) error {
	op := "put oci manifest " + quote(m.Digest) + " in " + quote(m.Repository)
	if m.Digest == "" || m.MediaType == "" || m.Size < 0 {
		return mapErr(op, invalid("empty digest or media type, or negative size"))
	}
	annotations := ""
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return mapErr(op, err)
		}
		annotations = string(b)
	}
	var cur *meta.OCIManifest
	err := s.update(ctx, func(tx *sql.Tx) error {
		if err := s.requireRepository(ctx, tx, m.Repository); err != nil {
			return err
		}
		now := s.stamp().UnixNano()
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oci_manifests (`+ociManifestCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING`),
			m.Repository, m.Digest, m.MediaType, m.Size, m.Subject, m.ArtifactType, annotations, now)
		if err != nil {
			return err
		}
		if cur, err = s.ociManifest(ctx, tx, m.Repository, m.Digest); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO oci_tags (repository, tag, digest, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (repository, tag)
			DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`),
			m.Repository, tag, m.Digest, now)
		return err
	})
	if err != nil {
		return mapErr(op, err)
	}
	*m = *cur
	return nil
}

// GetOCIManifest finds a manifest by repository and digest. Missing:
// meta.ErrNotFound.
func (s *Store) GetOCIManifest(ctx context.Context, repo, digest string) (*meta.OCIManifest, error) {
	m, err := s.ociManifest(ctx, s.r, repo, digest)
	if err != nil {
		return nil, mapErr("get oci manifest "+quote(digest)+" in "+quote(repo), err)
	}
	return m, nil
}

// DeleteOCIManifest removes the manifest and the tags pointing at it in one
// transaction. Missing: meta.ErrNotFound.
func (s *Store) DeleteOCIManifest(ctx context.Context, repo, digest string) error {
	err := s.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND digest = ?`),
			repo, digest); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_manifests WHERE repository = ? AND digest = ?`),
			repo, digest)
		return affected(res, err)
	})
	return mapErr("delete oci manifest "+quote(digest)+" in "+quote(repo), err)
}

// OCIReferrers returns the manifests of repo whose subject is subject (and
// whose artifact type is artifactType, unless that is ""), ordered by digest.
func (s *Store) OCIReferrers(ctx context.Context, repo, subject, artifactType string) ([]meta.OCIManifest, error) {
	op := "oci referrers of " + quote(subject) + " in " + quote(repo)
	query := `SELECT ` + ociManifestCols + ` FROM oci_manifests WHERE repository = ? AND subject = ?`
	args := []any{repo, subject}
	if artifactType != "" {
		query, args = query+` AND artifact_type = ?`, append(args, artifactType)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+` ORDER BY digest`), args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	out := []meta.OCIManifest{}
	for rows.Next() {
		m, err := scanOCIManifest(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, *m)
	}
	return out, mapErr(op, rows.Err())
}

// ResolveOCITag returns the digest tag points at. Missing: meta.ErrNotFound.
func (s *Store) ResolveOCITag(ctx context.Context, repo, tag string) (string, error) {
	var d string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT digest FROM oci_tags WHERE repository = ? AND tag = ?`),
		repo, tag).Scan(&d)
	if err != nil {
		return "", mapErr("resolve oci tag "+quote(tag)+" in "+quote(repo), err)
	}
	return d, nil
}

// ListOCITags returns at most n (n <= 0: all) tags of repo after last in
// byte-wise lexical order. The order is applied here, not by the database,
// so that it does not depend on a collation.
func (s *Store) ListOCITags(ctx context.Context, repo, last string, n int) ([]string, error) {
	op := "list oci tags of " + quote(repo)
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT tag FROM oci_tags WHERE repository = ?`), repo)
	if err != nil {
		return nil, mapErr(op, err)
	}
	tags, err := scanStrings(op, rows)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(tags, strings.Compare)
	if last != "" {
		i, found := slices.BinarySearch(tags, last)
		if found {
			i++
		}
		tags = tags[i:]
	}
	if n > 0 && len(tags) > n {
		tags = tags[:n]
	}
	return tags, nil
}

// DeleteOCITag removes a tag. Missing: meta.ErrNotFound.
func (s *Store) DeleteOCITag(ctx context.Context, repo, tag string) error {
	err := s.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND tag = ?`), repo, tag)
		return affected(res, err)
	})
	return mapErr("delete oci tag "+quote(tag)+" in "+quote(repo), err)
}
