// Package sqlite is the embedded metadata backend: a meta.Store on one SQLite
// file, through the pure-Go driver modernc.org/sqlite (no cgo). The queries
// are sqlstore's; this package owns the connections and Watch.
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
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/migrations"
	"github.com/cairnhq/cairn/internal/meta/sqlstore"
)

// Every capability: Watch is this package's, the rest come with the
// embedded *sqlstore.Store.
var _ meta.Full = (*Store)(nil)

// Store is a meta.Store (and meta.Watcher) on one SQLite file. The queries
// are sqlstore's.
type Store struct {
	*sqlstore.Store
	w       *sql.DB // one connection, BEGIN IMMEDIATE: all writes
	r       *sql.DB // read-only pool
	now     func() time.Time
	watch   watchers
	closed  chan struct{}
	closeMu sync.Once
	lead    leaders
}

// Option configures Open.
type Option = sqlstore.Option[struct{}]

// WithClock sets the clock that stamps records and events (default time.Now).
func WithClock(now func() time.Time) Option { return sqlstore.WithClock[struct{}](now) }

const busyTimeoutMS = 5000

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. The directory must exist. The caller closes the Store.
func Open(path string, opts ...Option) (*Store, error) {
	o := sqlstore.Collect(struct{}{}, opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{now: o.Now, closed: make(chan struct{})}
	s.Store = sqlstore.New(s.hooks())
	s.w, err = sql.Open("sqlite", dsn(abs, "_txlock=immediate", "_pragma=journal_mode(WAL)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
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

// migrate applies the missing migrations with the shared runner
// (migrations.Apply) on the writer connection.
func (s *Store) migrate(ctx context.Context) error {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = migrations.Apply(ctx, c, migrations.SQLite, func() int64 { return s.now().UnixNano() })
	return err
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
		s.waitPoller()
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

// hooks are what SQLite does differently from PostgreSQL: one writer
// connection that begins with BEGIN IMMEDIATE (so a read-then-write needs no
// row lock), reads on the read-only pool, watchers woken in this process
// after a commit.
func (s *Store) hooks() sqlstore.Hooks {
	return sqlstore.Hooks{
		Name:    "sqlite",
		Dialect: migrations.SQLite,
		Now:     s.now,
		Read: func(ctx context.Context, fn func(q sqlstore.Querier) error) error {
			return fn(s.r)
		},
		Update: func(ctx context.Context, fn func(tx *sql.Tx) error) error {
			return sqlstore.InTx(ctx, s.w, nil, fn)
		},
		Snapshot: func(ctx context.Context, fn func(tx *sql.Tx) error) error {
			return sqlstore.InTx(ctx, s.r, &sql.TxOptions{ReadOnly: true}, fn)
		},
		Changed:  s.notify,
		Conflict: conflict,
		NoSpace:  full,
	}
}

// conflict reports unique-key violations.
func conflict(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// full reports SQLITE_FULL: the disk holding the database (or its WAL) is
// full.
func full(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}
