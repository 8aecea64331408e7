package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultEventLimit is the page size of ListEvents when the filter sets none.
const DefaultEventLimit = 1000

// change is the detail of a pointer move.
type change struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// appendEvent inserts e (its ID is assigned by the database) with detail
// marshalled as JSON (nil: no detail).
func (s *Store) appendEvent(ctx context.Context, tx *sql.Tx, e meta.Event, detail any) error {
	var d any
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		d = string(b)
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO events
		(at, actor, action, deployment_id, version_id, hostname, release_sha256, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.At.UnixNano(), e.Actor, e.Action, e.DeploymentID, e.VersionID, e.Hostname, e.ReleaseSHA256, d)
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
	query := `SELECT id, at, actor, action, deployment_id, version_id, hostname, release_sha256, detail
		FROM events`
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
		var (
			e      meta.Event
			at     int64
			detail sql.NullString
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.DeploymentID, &e.VersionID,
			&e.Hostname, &e.ReleaseSHA256, &detail); err != nil {
			return nil, mapErr("list events", err)
		}
		e.At = fromNanos(at)
		if detail.Valid && detail.String != "" {
			e.Detail = json.RawMessage(detail.String)
		}
		out = append(out, e)
	}
	return out, mapErr("list events", rows.Err())
}
