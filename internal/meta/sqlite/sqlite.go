// Package sqlite is the embedded metadata backend: a meta.Store on one SQLite
// file, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode. SQLite allows one writer at a time, so the
// Store sends every write transaction through a single connection that begins
// with BEGIN IMMEDIATE: concurrent writers in this process queue on it instead
// of failing with SQLITE_BUSY, and writers in other processes wait for the
// lock up to the busy timeout. Reads use a separate pool of read-only
// connections and run concurrently with each other and with the writer.
//
// Times are stored as unix nanoseconds UTC and returned in UTC.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/migrations"
)

var (
	_ meta.Store   = (*Store)(nil)
	_ meta.Watcher = (*Store)(nil)
)

// Store is a meta.Store (and meta.Watcher) on one SQLite file.
type Store struct {
	w       *sql.DB // one connection, BEGIN IMMEDIATE: all writes
	r       *sql.DB // read-only pool
	now     func() time.Time
	d       migrations.Dialect
	watch   watchers
	closed  chan struct{}
	closeMu sync.Once
}

type options struct {
	now func() time.Time
}

// Option configures Open.
type Option func(*options)

// WithClock sets the clock that stamps records and events (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

const busyTimeoutMS = 5000

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. The directory must exist. The caller closes the Store.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{now: o.now, d: migrations.SQLite, closed: make(chan struct{})}
	s.w, err = sql.Open("sqlite", dsn(abs, "_txlock=immediate", "_pragma=journal_mode(WAL)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	ctx := context.Background()
	if _, err := migrations.Apply(ctx, s.w, s.d, func() int64 { return s.stamp().UnixNano() }); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.r, err = sql.Open("sqlite", dsn(abs, "_pragma=query_only(1)"))
	if err == nil {
		s.r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
		err = s.r.PingContext(ctx)
	}
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// dsn is a file: URI for abs with the connection settings both pools share.
func dsn(abs string, extra ...string) string {
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMS),
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(NORMAL)",
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: strings.Join(append(q, extra...), "&")}
	return u.String()
}

// Close closes the database and every Watch channel. It is safe to call twice.
func (s *Store) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.closed)
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q rebinds a query written with '?' placeholders for the dialect.
func (s *Store) q(query string) string { return s.d.Rebind(query) }

// update runs fn in one write transaction and commits it if fn succeeds.
func (s *Store) update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// stamp is the clock's time in UTC, truncated to what the database keeps.
func (s *Store) stamp() time.Time {
	return fromNanos(s.now().UnixNano())
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func timeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func strArg(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullStr(n sql.NullString) *string {
	if !n.Valid {
		return nil
	}
	return &n.String
}

var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID is prefix + 20 random lowercase base32 characters (100 bits).
func newID(prefix string) string {
	var b [13]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))[:20]
}

// mapErr wraps err with op, translating sql.ErrNoRows to meta.ErrNotFound and
// unique-key violations to meta.ErrConflict.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = meta.ErrNotFound
	case errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
		err = fmt.Errorf("%w: %w", meta.ErrConflict, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// invalid is a meta.ErrInvalid with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", meta.ErrInvalid, fmt.Sprintf(format, args...))
}

func quote(s string) string { return strconv.Quote(s) }
