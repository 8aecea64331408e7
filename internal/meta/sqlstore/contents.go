package sqlstore

import (
	"context"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// The content index (meta.ContentIndex; migration 0017_contents).

// contentBatch bounds the rows of one statement (SQLite's default limit of
// bound parameters is 32766).
const contentBatch = 400

// IndexContents records cs in release rel: see meta.ContentIndex.
func (s *Store) IndexContents(ctx context.Context, rel string, cs []meta.Content) error {
	op := "index contents of " + quote(rel)
	if !isSHA256(rel) {
		return s.mapErr(op, invalid("malformed release sha256 %q", rel))
	}
	for _, c := range cs {
		if !isSHA256(c.SHA256) || c.ReleaseSHA256 != rel || c.Size < 0 || c.FrameOffset < 0 || c.FrameLength < 0 || c.InFrame < 0 {
			return s.mapErr(op, invalid("content %q of release %q: malformed", c.SHA256, c.ReleaseSHA256))
		}
	}
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.lockSHAs(ctx, tx, []string{rel}); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM releases WHERE sha256 = ?`), rel).Scan(&one); err != nil {
			return err // sql.ErrNoRows: meta.ErrNotFound
		}
		for len(cs) > 0 {
			n := min(len(cs), contentBatch)
			var b strings.Builder
			args := make([]any, 0, 7*n)
			b.WriteString(`INSERT INTO contents (sha256, release_sha256, size, frame_offset, frame_length, in_frame, shared) VALUES `)
			for i, c := range cs[:n] {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				args = append(args, c.SHA256, rel, c.Size, c.FrameOffset, c.FrameLength, c.InFrame, c.Shared)
			}
			b.WriteString(` ON CONFLICT (sha256, release_sha256) DO NOTHING`)
			if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
				return err
			}
			cs = cs[n:]
		}
		return nil
	})
	return s.mapErr(op, err)
}

// FindContents: see meta.ContentIndex.
func (s *Store) FindContents(ctx context.Context, shas []string) (map[string]meta.Content, error) {
	found := map[string]meta.Content{}
	err := s.snapshotTx(ctx, func(q Querier) error {
		for rest := shas; len(rest) > 0; {
			n := min(len(rest), contentBatch)
			args := make([]any, n)
			for i, sha := range rest[:n] {
				args[i] = sha
			}
			rows, err := q.QueryContext(ctx, s.q(`SELECT c.sha256, c.release_sha256, c.size, c.frame_offset,
				c.frame_length, c.in_frame, c.shared FROM contents c JOIN releases r ON r.sha256 = c.release_sha256
				WHERE r.collected_at IS NULL AND r.collecting_at IS NULL
				AND c.sha256 IN (?`+strings.Repeat(", ?", n-1)+`) ORDER BY c.sha256, c.release_sha256`), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var c meta.Content
				if err := rows.Scan(&c.SHA256, &c.ReleaseSHA256, &c.Size, &c.FrameOffset, &c.FrameLength, &c.InFrame, &c.Shared); err != nil {
					rows.Close()
					return err
				}
				if _, ok := found[c.SHA256]; !ok {
					found[c.SHA256] = c
				}
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("find contents", err)
	}
	return found, nil
}
