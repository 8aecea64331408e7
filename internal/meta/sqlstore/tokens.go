package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Tokens (migration 0007). Scopes are stored joined by single spaces.

const tokenCols = `id, name, hash, scopes, created_by, created_at, expires_at, last_used_at, revoked_at`

// CreateToken inserts a token with its "token.create" event.
func (s *Store) CreateToken(ctx context.Context, t *meta.Token, actor string) error {
	if err := checkToken(t); err != nil {
		return s.mapErr("create token", err)
	}
	nt := *t
	if nt.ID == "" {
		nt.ID = newID("tok_")
	}
	nt.Scopes = append([]string(nil), t.Scopes...)
	nt.CreatedAt, nt.CreatedBy = s.stamp(), actor
	nt.LastUsedAt, nt.RevokedAt = nil, nil
	var expires *int64
	if nt.ExpiresAt != nil {
		ns := nt.ExpiresAt.UnixNano()
		expires, nt.ExpiresAt = &ns, nullTime(&ns)
	}
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO tokens (`+tokenCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)`),
			nt.ID, nt.Name, nt.Hash, strings.Join(nt.Scopes, " "), actor, nt.CreatedAt.UnixNano(), expires)
		if err != nil {
			return err
		}
		detail := map[string]any{"token_id": nt.ID, "name": nt.Name, "scopes": nt.Scopes}
		if nt.ExpiresAt != nil {
			detail["expires_at"] = nt.ExpiresAt
		}
		return s.appendEvent(ctx, tx, meta.Event{At: nt.CreatedAt, Actor: actor, Action: meta.ActionTokenCreate}, detail)
	})
	if err != nil {
		return s.mapErr("create token "+quote(nt.ID), err)
	}
	*t = nt
	return nil
}

func checkToken(t *meta.Token) error {
	switch {
	case !isSHA256(t.Hash):
		return invalid("token hash is not a sha256 hex digest")
	case len(t.Scopes) == 0:
		return invalid("a token needs at least one scope")
	}
	for _, sc := range t.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			return invalid("scope %q is empty or has a space", sc)
		}
	}
	return nil
}

// GetToken returns a token by id.
func (s *Store) GetToken(ctx context.Context, id string) (*meta.Token, error) {
	return readRow(ctx, s, "get token "+quote(id), func(q Querier) (*meta.Token, error) {
		return scanToken(q.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE id = ?`), id))
	})
}

// TokenByHash returns the token with hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*meta.Token, error) {
	return readRow(ctx, s, "get token by hash", func(q Querier) (*meta.Token, error) {
		return scanToken(q.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE hash = ?`), hash))
	})
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]meta.Token, error) {
	out, err := list(ctx, s, scanToken, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`+s.collateC)
	if err != nil {
		return nil, s.mapErr("list tokens", err)
	}
	return out, nil
}

// RevokeToken stamps revoked_at once, with its event.
func (s *Store) RevokeToken(ctx context.Context, id, actor string) (*meta.Token, error) {
	var t *meta.Token
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if t, err = scanToken(tx.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE id = ?`+s.forUpdate), id)); err != nil {
			return err
		}
		if t.RevokedAt != nil {
			return nil
		}
		now := s.stamp()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE tokens SET revoked_at = ? WHERE id = ?`), now.UnixNano(), id); err != nil {
			return err
		}
		t.RevokedAt = &now
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionTokenRevoke},
			map[string]any{"token_id": id})
	})
	if err != nil {
		return nil, s.mapErr("revoke token "+quote(id), err)
	}
	return t, nil
}

// TouchToken moves last_used_at forward to at.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	err := s.update(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE tokens SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), at.UnixNano(), id, at.UnixNano())
		if err != nil || affected(res) > 0 {
			return err
		}
		var one int
		return tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM tokens WHERE id = ?`), id).Scan(&one)
	})
	return s.mapErr("touch token "+quote(id), err)
}

func scanToken(r scanner) (*meta.Token, error) {
	var (
		t                      meta.Token
		scopes                 string
		created                int64
		expires, used, revoked sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Name, &t.Hash, &scopes, &t.CreatedBy, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.Scopes = strings.Fields(scopes)
	t.CreatedAt = fromNanos(created)
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = nullNanos(expires), nullNanos(used), nullNanos(revoked)
	return &t, nil
}

func nullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	return nullTime(&n.Int64)
}
