package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Upload sessions (migration 0006). An append is guarded by the size the
// caller read: its UPDATE matches only while uploads.size still has that
// value, so of two concurrent appends at one offset (PostgreSQL: the second
// waits on the row, then re-reads it) exactly one wins.

var _ interface {
	meta.Uploads
	meta.UploadCounter
} = (*Store)(nil)

// CreateUpload records an empty upload.
func (s *Store) CreateUpload(ctx context.Context, u meta.Upload) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO uploads (id, repository, started_at, updated_at, size)
			VALUES (?, ?, ?, ?, 0)`), u.ID, u.Repository, u.Started.UnixNano(), u.Updated.UnixNano())
		return err
	})
	return s.mapErr("create upload "+quote(u.ID), err)
}

// GetUpload returns an upload and its parts, read in one snapshot.
func (s *Store) GetUpload(ctx context.Context, id string) (*meta.Upload, error) {
	var u *meta.Upload
	err := s.snapshotTx(ctx, func(q Querier) error {
		var err error
		u, err = scanUpload(q.QueryRowContext(ctx, s.q(uploadSelect+` WHERE id = ?`), id))
		if err != nil {
			return err
		}
		return s.uploadParts(ctx, q, u)
	})
	if err != nil {
		return nil, s.mapErr("get upload "+quote(id), err)
	}
	return u, nil
}

// AppendUpload adds part p to upload id if it still has size bytes.
func (s *Store) AppendUpload(ctx context.Context, id string, size int64, p meta.UploadPart, now time.Time) error {
	if p.Size < 0 || (p.Size > 0 && !isDigest(p.Digest)) {
		return s.mapErr("append to upload "+quote(id), invalid("part %q of %d bytes", p.Digest, p.Size))
	}
	err := s.update(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE uploads SET size = size + ?, updated_at = ?
			WHERE id = ? AND size = ?`), p.Size, now.UnixNano(), id, size)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			var cur int64
			if err := tx.QueryRowContext(ctx, s.q(`SELECT size FROM uploads WHERE id = ?`), id).Scan(&cur); err != nil {
				return err // sql.ErrNoRows: meta.ErrNotFound
			}
			return fmt.Errorf("%w: %d bytes, not %d", meta.ErrUploadMoved, cur, size)
		}
		if p.Size == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO upload_parts (upload_id, seq, digest, size)
			SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ? FROM upload_parts WHERE upload_id = ?`),
			id, p.Digest, p.Size, id)
		return err
	})
	return s.mapErr("append to upload "+quote(id), err)
}

// DeleteUpload deletes an upload; its parts go with it (ON DELETE CASCADE),
// in the same statement, so a part appended concurrently is deleted too or
// finds no upload. (Deleting the parts first, then the upload, failed on
// PostgreSQL under READ COMMITTED: the part inserted meanwhile was missed,
// and the upload's DELETE broke the foreign key.)
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM uploads WHERE id = ?`), id)
		return err
	})
	return s.mapErr("delete upload "+quote(id), err)
}

// CountUploads counts the uploads of repo and of the repositories under it
// updated at or after since. A repository name has no LIKE wildcards ('%',
// '_'); one that does matches nothing under it.
func (s *Store) CountUploads(ctx context.Context, repo string, since time.Time) (int, error) {
	under := repo + "/%"
	if strings.ContainsAny(repo, `%_\`) {
		under = ""
	}
	var n int
	err := s.snapshotTx(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM uploads
			WHERE (repository = ? OR repository LIKE ?) AND updated_at >= ?`), repo, under, since.UnixNano()).Scan(&n)
	})
	return n, s.mapErr("count uploads of "+quote(repo), err)
}

// ExpiredUploads returns the uploads last updated before before.
func (s *Store) ExpiredUploads(ctx context.Context, before time.Time, limit int) ([]meta.Upload, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []meta.Upload
	err := s.snapshotTx(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, s.q(uploadSelect+` WHERE updated_at < ?
			ORDER BY updated_at, id`+s.collateC+` LIMIT ?`), before.UnixNano(), limit)
		if err != nil {
			return err
		}
		ups, err := collectRows(rows, scanUpload)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, u := range ups {
			if err := s.uploadParts(ctx, q, u); err != nil {
				return err
			}
			out = append(out, *u)
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("expired uploads", err)
	}
	return out, nil
}

const uploadSelect = `SELECT id, repository, started_at, updated_at, size FROM uploads`

func scanUpload(r scanner) (*meta.Upload, error) {
	var (
		u                meta.Upload
		started, updated int64
	)
	if err := r.Scan(&u.ID, &u.Repository, &started, &updated, &u.Size); err != nil {
		return nil, err
	}
	u.Started, u.Updated = fromNanos(started), fromNanos(updated)
	return &u, nil
}

// uploadParts reads u's parts in order.
func (s *Store) uploadParts(ctx context.Context, q Querier, u *meta.Upload) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT seq, digest, size FROM upload_parts
		WHERE upload_id = ? ORDER BY seq`), u.ID)
	if err != nil {
		return err
	}
	u.Parts, err = collectRows(rows, func(r scanner) (meta.UploadPart, error) {
		var p meta.UploadPart
		err := r.Scan(&p.Seq, &p.Digest, &p.Size)
		return p, err
	})
	if len(u.Parts) == 0 {
		u.Parts = nil
	}
	return err
}

// isDigest reports whether d is "sha256:" and 64 lowercase hex digits.
func isDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && isSHA256(hex)
}
