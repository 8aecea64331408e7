// Package sqlstore owns the SQL of the metadata store: one implementation of
// meta.Store and its optional interfaces (meta.GC, meta.Leases,
// meta.Policies, meta.OCIGC, meta.Registry, meta.Replicas, meta.Tokens,
// meta.Uploads) over database/sql, on the schema of internal/meta/migrations
// (times as BIGINT unix nanoseconds UTC, returned in UTC).
//
// The backends (internal/meta/sqlite, internal/meta/postgres) open the
// database, apply the migrations and describe in Hooks the few things they
// do differently: how a write transaction begins and is retried, which
// row and advisory locks exist, how a committed change is announced, and
// which driver errors mean a taken unique key.
//
// Concurrency. SQLite runs one writer at a time (the sqlite backend's single
// BEGIN IMMEDIATE connection), so reading and then changing rows inside a
// write transaction needs no lock. PostgreSQL runs writers concurrently:
// there every transaction that reads and then changes a deployment's
// versions, pointer or domains first locks the deployment's row (FOR
// UPDATE; see lockDeployment), and garbage collection decides under the
// locks of Hooks.LockSHAs and Hooks.LockRoots. On SQLite those are no-ops.
//
// The comments here speak of locks as PostgreSQL takes them: "locks the row"
// is SELECT … FOR UPDATE, "the advisory lock" a Hooks lock, "waits" a writer
// blocked on a lock or an ON CONFLICT. On SQLite the write transaction
// already holds the whole database, so the same sentences hold with every
// lock taken at BEGIN, and concurrent writers queue on the writer connection.
// Snapshot transactions are REPEATABLE READ on PostgreSQL, a read
// transaction (one WAL snapshot) on SQLite.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/migrations"
)

// The capabilities Store implements for both backends (each backend adds
// its Watcher and asserts meta.Full).
var (
	_ meta.Tokens       = (*Store)(nil)
	_ meta.Registry     = (*Store)(nil)
	_ meta.OCIGC        = (*Store)(nil)
	_ meta.Derivations  = (*Store)(nil)
	_ meta.Replicas     = (*Store)(nil)
	_ meta.Certs        = (*Store)(nil)
	_ meta.Hosts        = (*Store)(nil)
	_ meta.ContentIndex = (*Store)(nil)
)

// Querier is what *sql.DB, *sql.Conn and *sql.Tx share.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Hooks are what a backend does differently. Every field is required unless
// it says otherwise.
type Hooks struct {
	// Name prefixes error messages: "sqlite", "postgres".
	Name    string
	Dialect migrations.Dialect
	// Now stamps records and events.
	Now func() time.Time

	// Read runs fn outside a transaction. It may run fn again when it
	// fails retryably.
	Read func(ctx context.Context, fn func(q Querier) error) error
	// Update runs fn in one write transaction and commits it if fn
	// succeeds. It may run fn again (in a new transaction) when the
	// transaction fails retryably.
	Update func(ctx context.Context, fn func(tx *sql.Tx) error) error
	// Snapshot runs fn in one read-only transaction in which every statement
	// sees the same snapshot.
	Snapshot func(ctx context.Context, fn func(tx *sql.Tx) error) error

	// RowLocks: the database has SELECT … FOR UPDATE … SKIP LOCKED and
	// COLLATE "C" (PostgreSQL). Without them (SQLite) the single writer
	// serialises, and the default collation is bytewise.
	RowLocks bool

	// LockEvents, if set, runs in tx before an event is appended; it must
	// hold until tx ends (see appendEvent).
	LockEvents func(ctx context.Context, tx *sql.Tx) error
	// LockSHAs, if set, takes the locks that serialise every decision about
	// the release sha256s shas, held until tx ends.
	LockSHAs func(ctx context.Context, tx *sql.Tx, shas []string) error
	// LockRoots, if set, takes every lock under which the roots of the
	// releases shas are found (LockSHAs among them), held until tx ends.
	LockRoots func(ctx context.Context, tx *sql.Tx, shas []string) error
	// LockRegistry, if set, locks the registry's tables (manifests, tags,
	// blob links) against writes until tx ends.
	LockRegistry func(ctx context.Context, tx *sql.Tx) error

	// Announce, if set, runs in tx after an event that moves a pointer or
	// adds a version was appended (PostgreSQL: pg_notify, delivered on
	// commit).
	Announce func(ctx context.Context, tx *sql.Tx, e meta.Event) error
	// Changed, if set, runs after the commit of a transaction that appended
	// such an event (SQLite: wake this process's watchers).
	Changed func()

	// Conflict reports a driver error that is a unique-key violation.
	Conflict func(err error) bool
	// NoSpace, if set, reports a driver error that means the database's
	// disk is full (SQLITE_FULL, PostgreSQL's disk_full); the error is then
	// wrapped with syscall.ENOSPC, which the HTTP layer answers with 507.
	NoSpace func(err error) bool
}

// Store is the shared meta.Store. It is safe for concurrent use; the backend
// that made it closes the database.
type Store struct {
	h Hooks
	// SQL fragments that exist only with Hooks.RowLocks ("" otherwise).
	forUpdate, skipLocked, collateC string
}

// New returns a Store on the database behind h.
func New(h Hooks) *Store {
	s := &Store{h: h}
	if h.RowLocks {
		s.forUpdate, s.skipLocked, s.collateC = " FOR UPDATE", " SKIP LOCKED", ` COLLATE "C"`
	}
	return s
}

// wtx is a write transaction; announced records whether it appended an
// event that Hooks.Changed must hear of after commit.
type wtx struct {
	*sql.Tx
	announced bool
}

// Ping runs a trivial query, as every read does (meta.Store).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.mapErr("ping", s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	}))
}

// read runs fn outside a transaction.
func (s *Store) read(ctx context.Context, fn func(q Querier) error) error {
	return s.h.Read(ctx, fn)
}

// update runs fn in one write transaction and commits it if fn succeeds.
func (s *Store) update(ctx context.Context, fn func(tx *wtx) error) error {
	var announced bool
	err := s.h.Update(ctx, func(t *sql.Tx) error {
		tx := &wtx{Tx: t}
		err := fn(tx)
		announced = tx.announced
		return err
	})
	if err == nil && announced && s.h.Changed != nil {
		s.h.Changed()
	}
	return err
}

// snapshotTx runs fn in one read-only transaction: every statement sees the
// same snapshot.
func (s *Store) snapshotTx(ctx context.Context, fn func(tx Querier) error) error {
	return s.h.Snapshot(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// lockSHAs runs Hooks.LockSHAs, if any.
func (s *Store) lockSHAs(ctx context.Context, tx *wtx, shas []string) error {
	if s.h.LockSHAs == nil {
		return nil
	}
	return s.h.LockSHAs(ctx, tx.Tx, shas)
}

// lockRoots runs Hooks.LockRoots, if any.
func (s *Store) lockRoots(ctx context.Context, tx *wtx, shas []string) error {
	if s.h.LockRoots == nil {
		return nil
	}
	return s.h.LockRoots(ctx, tx.Tx, shas)
}

// q rebinds a query written with '?' placeholders for the dialect.
func (s *Store) q(query string) string { return s.h.Dialect.Rebind(query) }

// mapErr wraps err with op, translating sql.ErrNoRows to meta.ErrNotFound and
// unique-key violations (Hooks.Conflict) to meta.ErrConflict.
func (s *Store) mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = meta.ErrNotFound
	case s.h.Conflict(err):
		err = fmt.Errorf("%w: %w", meta.ErrConflict, err)
	case s.h.NoSpace != nil && !errors.Is(err, syscall.ENOSPC) && s.h.NoSpace(err):
		err = fmt.Errorf("%w: %w", syscall.ENOSPC, err)
	}
	return fmt.Errorf("%s: %s: %w", s.h.Name, op, err)
}

// readRow runs get in one read and maps its error, if any, for op.
func readRow[T any](ctx context.Context, s *Store, op string, get func(Querier) (T, error)) (T, error) {
	var v T
	err := s.read(ctx, func(q Querier) (err error) {
		v, err = get(q)
		return err
	})
	if err != nil {
		var zero T
		return zero, s.mapErr(op, err)
	}
	return v, nil
}
