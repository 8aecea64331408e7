package sqlstore

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

// change is the detail of a pointer move.
type change struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// eventCols are the columns scanEvent reads, in its order.
const eventCols = `id, at, actor, action, deployment_id, version_id, hostname, release_sha256, detail,
	prev_hash, hash`

// appendEvent inserts e (its ID is assigned by the database) with detail
// marshalled as JSON (nil: no detail), chained to the newest event: it
// stores that event's hash as prev_hash and its own meta.EventHash, which
// covers the assigned id. For an action that moves a pointer or adds a
// version it announces the change (see announce).
//
// "Newest" must be exact and ids must become visible in order. On SQLite
// the one write connection makes it so. On PostgreSQL Hooks.LockEvents
// first takes a per-schema transaction advisory lock, held until commit:
// identity values are handed out at insert time but become visible at
// commit, so without it a reader paging by id could see event n+1 before n
// commits and skip n for good; and the newest event read under it is the
// one the new event follows, so the chain has no forks. After its first
// event a transaction only touches rows of the deployment whose row lock it
// already holds, so the lock adds no deadlock; it does serialise writers
// from their first event to their commit. (READ COMMITTED: the read of the
// newest event, after the lock, sees every earlier holder's commit.)
func (s *Store) appendEvent(ctx context.Context, tx *wtx, e meta.Event, detail any) error {
	var d *string
	e.Detail = nil
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		text := string(b)
		d, e.Detail = &text, b
	}
	if s.h.LockEvents != nil {
		if err := s.h.LockEvents(ctx, tx.Tx); err != nil {
			return err
		}
	}
	err := tx.QueryRowContext(ctx, `SELECT hash FROM events ORDER BY id DESC LIMIT 1`).Scan(&e.PrevHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	e.At = fromNanos(e.At.UnixNano()) // as stored
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO events
		(at, actor, action, deployment_id, version_id, hostname, release_sha256, detail, prev_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		e.At.UnixNano(), e.Actor, e.Action, e.DeploymentID, e.VersionID, e.Hostname, e.ReleaseSHA256, d,
		e.PrevHash).Scan(&e.ID)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE events SET hash = ? WHERE id = ?`), meta.EventHash(e), e.ID); err != nil {
		return err
	}
	return s.announce(ctx, tx, e)
}

// announce marks tx as announcing a change when e moves a pointer or adds a
// version (Hooks.Changed runs after commit) and runs Hooks.Announce in tx.
// Watchers hear of a change on commit, never of a rolled-back one.
func (s *Store) announce(ctx context.Context, tx *wtx, e meta.Event) error {
	switch e.Action {
	case meta.ActionPublish, meta.ActionActivate, meta.ActionRollback,
		meta.ActionDomainAdd, meta.ActionDomainRepoint, meta.ActionCollect,
		meta.ActionDomainRemove, meta.ActionDeploymentDelete,
		meta.ActionDeploymentUpdate: // settings the edge serves by (spa, clean_urls, proxy_rewrites)
	default:
		return nil
	}
	tx.announced = true
	if s.h.Announce == nil {
		return nil
	}
	return s.h.Announce(ctx, tx.Tx, e)
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
	if f.Hostname != "" {
		where, args = append(where, "hostname = ?"), append(args, strings.ToLower(f.Hostname))
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
	out, err := list(ctx, s, scanEvent, query+" ORDER BY id LIMIT ?", append(args, limit)...)
	return out, s.mapErr("list events", err)
}

// LastEvent returns the newest event (the head of the chain).
func (s *Store) LastEvent(ctx context.Context) (*meta.Event, error) {
	return readRow(ctx, s, "last event", func(q Querier) (*meta.Event, error) {
		return scanEvent(q.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events ORDER BY id DESC LIMIT 1`))
	})
}

func scanEvent(row scanner) (*meta.Event, error) {
	var (
		e      meta.Event
		at     int64
		detail *string
	)
	if err := row.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.DeploymentID, &e.VersionID,
		&e.Hostname, &e.ReleaseSHA256, &detail, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = fromNanos(at)
	if detail != nil && *detail != "" {
		e.Detail = json.RawMessage(*detail)
	}
	return &e, nil
}
