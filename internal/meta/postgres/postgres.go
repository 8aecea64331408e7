// Package postgres is the scale-out metadata backend: a meta.Store on a
// PostgreSQL schema, through pgx (github.com/jackc/pgx/v5), shared by any
// number of cairn processes. The queries are sqlstore's, run through pgx's
// database/sql driver on the pool; this package owns the connections, the
// migrations, the locks and retries below, and Watch.
//
// The tables are those of the shared migrations (internal/meta/migrations),
// created in the first schema of the connection's search_path; Open applies
// the missing ones under an advisory lock, so processes starting together
// migrate once. Times are stored as unix nanoseconds UTC and returned in UTC.
//
// Unlike SQLite, PostgreSQL runs writers concurrently. Every transaction that
// reads and then changes a deployment's versions, pointer or domains first
// locks the deployment's row (SELECT … FOR UPDATE), so version numbers are
// consecutive and exactly one version is active. Garbage collection locks
// those rows FOR SHARE instead, together with the release and version rows
// it decides on (see gc_lock.go). Events are appended under a
// per-schema transaction advisory lock, so event ids become visible in order
// and paging by EventFilter.AfterID misses none. Serialization failures and
// deadlocks (SQLSTATE 40001, 40P01) are retried a bounded number of times.
//
// Every transaction that moves a pointer or adds a version (publish,
// activate, rollback, domain add or repoint, collect) also runs
// pg_notify(Channel, payload), so every process hears of it on commit and
// never of a rolled-back change; see Watch.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/migrations"
	"github.com/cairnhq/cairn/internal/meta/sqlstore"
)

// Every capability: Watch is this package's, the rest come with the
// embedded *sqlstore.Store.
var _ meta.Full = (*Store)(nil)

// Store is a meta.Store and meta.Watcher on PostgreSQL. It is safe for
// concurrent use; Close releases its connections. The queries are
// sqlstore's, run through database/sql (pgx's stdlib) on the pool.
type Store struct {
	*sqlstore.Store
	now    func() time.Time
	log    *slog.Logger
	d      migrations.Dialect
	cfg    *pgx.ConnConfig
	pool   *pgxpool.Pool
	db     *sql.DB // database/sql over pool
	schema string  // current_schema() of every connection: where the tables are

	ctx    context.Context // ends when the Store is closed; ends every Watch
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and the Add of wg
	closed bool
	wg     sync.WaitGroup // Watch goroutines
}

// Option configures Open.
type Option = sqlstore.Option[own]

// own are the settings of this backend alone (see sqlstore.Options).
type own struct {
	log      *slog.Logger
	maxConns int
}

// WithClock sets the clock that stamps records and events (default time.Now).
func WithClock(now func() time.Time) Option { return sqlstore.WithClock[own](now) }

// WithLogger sets where Watch reports lost and restored listener connections
// (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return func(o *sqlstore.Options[own]) { o.Own.log = l }
}

// WithMaxConns bounds the pooled connections (default max(8, GOMAXPROCS)).
// Each Watch holds one more connection of its own.
func WithMaxConns(n int) Option {
	return func(o *sqlstore.Options[own]) { o.Own.maxConns = n }
}

// Open connects to the database at url (a postgres:// URL or a keyword/value
// string, as pgx.ParseConfig takes; runtime parameters such as search_path
// apply to every connection), brings the schema up to date and returns the
// Store. ctx bounds the connecting and migrating only. The caller closes the
// Store.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := sqlstore.Collect(own{log: slog.New(slog.DiscardHandler), maxConns: max(8, runtime.GOMAXPROCS(0))}, opts)
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err) // pgx redacts the password
	}
	pcfg.MaxConns = int32(max(1, o.Own.maxConns))
	cfg := pcfg.ConnConfig
	s := &Store{now: o.Now, log: o.Own.log, d: migrations.Postgres, cfg: cfg}
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s.db = stdlib.OpenDBFromPool(s.pool)
	if s.schema, err = s.migrate(ctx); err != nil {
		s.db.Close()
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s.Store = sqlstore.New(s.hooks())
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close ends every Watch (closing its channel and connection) and closes the
// pooled connections; calls still running close theirs when they finish. It
// is safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	err := s.db.Close()
	s.pool.Close()
	return err
}

// q rebinds a query written with '?' placeholders for the dialect.
func (s *Store) q(query string) string { return s.d.Rebind(query) }
