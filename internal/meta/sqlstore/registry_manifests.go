package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/cairnhq/cairn/internal/meta"
)

const ociManifestCols = `repository, digest, media_type, size, subject, artifact_type, annotations, created_at`

func scanOCIManifest(row scanner) (*meta.OCIManifest, error) {
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

// PutOCIManifest stores m unless its repository already has the digest, then
// refreshes *m from the stored row and, when tag is not empty, points tag at
// it, all in one transaction. Unknown repository: meta.ErrNotFound.
//
// The manifest row stays locked until commit, and DeleteOCIManifest locks it
// before it removes the tags: a put and a delete of one manifest run one
// after the other, and the tag never points at a deleted manifest. Puts of
// one tag at once wait for each other (ON CONFLICT); the last one wins.
func (s *Store) PutOCIManifest(ctx context.Context, m *meta.OCIManifest, tag string) error {
	op := "put oci manifest " + quote(m.Digest) + " in " + quote(m.Repository)
	if m.Digest == "" || m.MediaType == "" || m.Size < 0 {
		return s.mapErr(op, invalid("empty digest or media type, or negative size"))
	}
	annotations := ""
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return s.mapErr(op, err)
		}
		annotations = string(b)
	}
	var cur *meta.OCIManifest
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.requireRepository(ctx, tx, m.Repository); err != nil {
			return err
		}
		now := s.stamp().UnixNano()
		// DO UPDATE that changes nothing, rather than DO NOTHING: it locks
		// the row and returns it as stored; if a concurrent delete removed
		// the conflicting row, PostgreSQL inserts instead.
		var err error
		cur, err = scanOCIManifest(tx.QueryRowContext(ctx, s.q(`INSERT INTO oci_manifests (`+ociManifestCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest)
			DO UPDATE SET created_at = oci_manifests.created_at
			RETURNING `+ociManifestCols),
			m.Repository, m.Digest, m.MediaType, m.Size, m.Subject, m.ArtifactType, annotations, now))
		if err != nil || tag == "" {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO oci_tags (repository, tag, digest, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (repository, tag)
			DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`),
			m.Repository, tag, m.Digest, now)
		return err
	})
	if err != nil {
		return s.mapErr(op, err)
	}
	*m = *cur
	return nil
}

// GetOCIManifest finds a manifest by repository and digest. Missing:
// meta.ErrNotFound.
func (s *Store) GetOCIManifest(ctx context.Context, repo, digest string) (*meta.OCIManifest, error) {
	return readRow(ctx, s, "get oci manifest "+quote(digest)+" in "+quote(repo), func(q Querier) (*meta.OCIManifest, error) {
		return scanOCIManifest(q.QueryRowContext(ctx, s.q(`SELECT `+ociManifestCols+`
			FROM oci_manifests WHERE repository = ? AND digest = ?`), repo, digest))
	})
}

// DeleteOCIManifest removes the manifest and the tags pointing at it in one
// transaction, locking the manifest row first (see PutOCIManifest). Missing:
// meta.ErrNotFound.
func (s *Store) DeleteOCIManifest(ctx context.Context, repo, digest string) error {
	err := s.update(ctx, func(tx *wtx) error {
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM oci_manifests WHERE repository = ? AND digest = ?`+s.forUpdate), repo, digest).Scan(&one); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND digest = ?`),
			repo, digest); err != nil {
			return err
		}
		tag, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_manifests WHERE repository = ? AND digest = ?`),
			repo, digest)
		return rowsOrNotFound(affected(tag), err)
	})
	return s.mapErr("delete oci manifest "+quote(digest)+" in "+quote(repo), err)
}

// OCIReferrers returns the manifests of repo whose subject is subject (and
// whose artifact type is artifactType, unless that is ""), ordered by digest.
func (s *Store) OCIReferrers(ctx context.Context, repo, subject, artifactType string) ([]meta.OCIManifest, error) {
	query := `SELECT ` + ociManifestCols + ` FROM oci_manifests WHERE repository = ? AND subject = ?`
	args := []any{repo, subject}
	if artifactType != "" {
		query, args = query+` AND artifact_type = ?`, append(args, artifactType)
	}
	out, err := list(ctx, s, scanOCIManifest, query+` ORDER BY digest`+s.collateC, args...)
	if err != nil {
		return nil, s.mapErr("oci referrers of "+quote(subject)+" in "+quote(repo), err)
	}
	if out == nil {
		out = []meta.OCIManifest{}
	}
	return out, nil
}

// ResolveOCITag returns the digest tag points at. Missing: meta.ErrNotFound.
func (s *Store) ResolveOCITag(ctx context.Context, repo, tag string) (string, error) {
	var d string
	err := s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT digest FROM oci_tags WHERE repository = ? AND tag = ?`),
			repo, tag).Scan(&d)
	})
	if err != nil {
		return "", s.mapErr("resolve oci tag "+quote(tag)+" in "+quote(repo), err)
	}
	return d, nil
}

// ListOCITags returns at most n (n <= 0: all) tags of repo after last in
// byte-wise lexical order (COLLATE "C", whatever the database's collation).
func (s *Store) ListOCITags(ctx context.Context, repo, last string, n int) ([]string, error) {
	out, err := s.listPage(ctx, `SELECT tag FROM oci_tags WHERE repository = ?`, "tag", []any{repo}, last, n)
	return out, s.mapErr("list oci tags of "+quote(repo), err)
}

// listPage runs query (a SELECT of col with a WHERE clause, args for its
// placeholders) for at most n (n <= 0: all) values of col after last, in
// byte-wise order (COLLATE "C", whatever the database's collation).
func (s *Store) listPage(ctx context.Context, query, col string, args []any, last string, n int) ([]string, error) {
	if last != "" {
		query, args = query+` AND `+col+s.collateC+` > ?`, append(args, last)
	}
	query += ` ORDER BY ` + col + s.collateC
	if n > 0 {
		query, args = query+` LIMIT ?`, append(args, n)
	}
	return s.listStrings(ctx, query, args...)
}

// DeleteOCITag removes a tag. Missing: meta.ErrNotFound.
func (s *Store) DeleteOCITag(ctx context.Context, repo, tag string) error {
	err := s.update(ctx, func(tx *wtx) error {
		t, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND tag = ?`), repo, tag)
		return rowsOrNotFound(affected(t), err)
	})
	return s.mapErr("delete oci tag "+quote(tag)+" in "+quote(repo), err)
}
