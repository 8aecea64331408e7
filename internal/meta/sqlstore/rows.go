package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(dest ...any) error }

// collectRows scans every row of rows with fn and closes rows.
func collectRows[T any](rows *sql.Rows, fn func(r scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := fn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// rowTo scans a row of one column.
func rowTo[T any](r scanner) (T, error) {
	var v T
	err := r.Scan(&v)
	return v, err
}

// forEachRow scans every row of rows into dest, calls fn after each, and
// closes rows.
func forEachRow(rows *sql.Rows, dest []any, fn func() error) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		if err := fn(); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// affected is the number of rows r changed (0 for a nil r: the statement
// failed).
func affected(r sql.Result) int64 {
	if r == nil {
		return 0
	}
	n, _ := r.RowsAffected()
	return n
}

// list runs query (with '?' placeholders) and scans every row.
func list[T any](ctx context.Context, s *Store, scan func(scanner) (*T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := s.read(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r scanner) (T, error) {
			p, err := scan(r)
			if err != nil {
				var zero T
				return zero, err
			}
			return *p, nil
		})
		return err
	})
	return out, err
}

// rowsOrNotFound turns "no row changed" into sql.ErrNoRows (meta.ErrNotFound).
func rowsOrNotFound(n int64, err error) error {
	if err == nil && n == 0 {
		return sql.ErrNoRows
	}
	return err
}

// listStrings runs query (with '?' placeholders) and returns its one text column
// (no rows: an empty, non-nil list).
func (s *Store) listStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	var out []string
	err := s.read(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, rowTo[string])
		return err
	})
	if err == nil && out == nil {
		out = []string{}
	}
	return out, err
}

// batchSize bounds the values of one statement, far below the placeholder
// limits (SQLite 32766, PostgreSQL 65535).
const batchSize = 500

// batches calls fn for ss cut, in order, into batches of at most batchSize,
// with list the placeholder group each repeated once per value of batch and
// joined by ", " (each "?" for an IN list, "(?, ?)" for VALUES rows).
func batches(ss []string, each string, fn func(list string, batch []string) error) error {
	for len(ss) > 0 {
		n := min(len(ss), batchSize)
		list := strings.TrimSuffix(strings.Repeat(each+", ", n), ", ")
		if err := fn(list, ss[:n]); err != nil {
			return err
		}
		ss = ss[n:]
	}
	return nil
}

// anys converts ss for use as query arguments.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// stamp is the clock's time in UTC, truncated to what the database keeps.
func (s *Store) stamp() time.Time {
	return fromNanos(s.h.Now().UnixNano())
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func nullTime(ns *int64) *time.Time {
	if ns == nil {
		return nil
	}
	t := fromNanos(*ns)
	return &t
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID is prefix + 20 random lowercase base32 characters (100 bits).
func newID(prefix string) string {
	var b [13]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))[:20]
}

// invalid is a meta.ErrInvalid with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", meta.ErrInvalid, fmt.Sprintf(format, args...))
}

func quote(s string) string { return strconv.Quote(s) }
