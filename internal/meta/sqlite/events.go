package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultEventLimit is the page size of ListEvents when the filter sets none.
const DefaultEventLimit = 1000

// eventCols are the columns scanEvent reads, in its order.
const eventCols = `id, at, actor, action, deployment_id, version_id, hostname, release_sha256, detail,
	prev_hash, hash`

// change is the detail of a pointer move.
type change struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// appendEvent inserts e (its ID is assigned by the database) with detail
// marshalled as JSON (nil: no detail), chained to the newest event: it
// stores that event's hash as prev_hash and its own meta.EventHash, which
// covers the assigned id. The one write connection makes "newest" exact.
func (s *Store) appendEvent(ctx context.Context, tx *sql.Tx, e meta.Event, detail any) error {
	var d any
	e.Detail = nil
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		d, e.Detail = string(b), b
	}
	err := tx.QueryRowContext(ctx, `SELECT hash FROM events ORDER BY id DESC LIMIT 1`).Scan(&e.PrevHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	e.At = fromNanos(e.At.UnixNano()) // as stored
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO events
		(at, actor, action, deployment_id, version_id, hostname, release_sha256, detail, prev_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.At.UnixNano(), e.Actor, e.Action, e.DeploymentID, e.VersionID, e.Hostname, e.ReleaseSHA256, d, e.PrevHash)
	if err != nil {
		return err
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE events SET hash = ? WHERE id = ?`), meta.EventHash(e), e.ID)
	return err
}

// ListEvents returns the events matching f in id order (oldest first), at
// most f.Limit (0 or less: DefaultEventLimit).
func (s *Store) ListEvents(ctx context.Context, f meta.EventFilter) ([]meta.Event, error) {
	var (
		where []string
		args  []any
	)
	if f.DeploymentID != "" {
		where, args = append(where, "deployment_id = ?"), append(args, f.DeploymentID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since.UnixNano())
	}
	if f.AfterID > 0 {
		where, args = append(where, "id > ?"), append(args, f.AfterID)
	}
	query := `SELECT ` + eventCols + ` FROM events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+" ORDER BY id LIMIT ?"), append(args, limit)...)
	if err != nil {
		return nil, mapErr("list events", err)
	}
	defer rows.Close()
	out := []meta.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, mapErr("list events", err)
		}
		out = append(out, *e)
	}
	return out, mapErr("list events", rows.Err())
}

// LastEvent returns the newest event (the head of the chain).
func (s *Store) LastEvent(ctx context.Context) (*meta.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events ORDER BY id DESC LIMIT 1`))
	if err != nil {
		return nil, mapErr("last event", err)
	}
	return e, nil
}

func scanEvent(row interface{ Scan(...any) error }) (*meta.Event, error) {
	var (
		e      meta.Event
		at     int64
		detail sql.NullString
	)
	if err := row.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.DeploymentID, &e.VersionID,
		&e.Hostname, &e.ReleaseSHA256, &detail, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = fromNanos(at)
	if detail.Valid && detail.String != "" {
		e.Detail = json.RawMessage(detail.String)
	}
	return &e, nil
}
