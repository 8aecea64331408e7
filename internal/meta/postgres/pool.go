package postgres

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairnhq/cairn/internal/meta/sqlstore"
)

// hooks are what PostgreSQL does differently from SQLite: concurrent
// writers, each transaction retried when it fails retryably; row locks
// (FOR UPDATE, FOR SHARE); the event, sha256 and root locks of gc_lock.go;
// pg_notify inside the transaction (see announce).
func (s *Store) hooks() sqlstore.Hooks {
	return sqlstore.Hooks{
		Name:    "postgres",
		Dialect: s.d,
		Now:     s.now,
		Read: func(ctx context.Context, fn func(q sqlstore.Querier) error) error {
			return s.retry(ctx, func() error { return fn(s.db) })
		},
		Update: func(ctx context.Context, fn func(tx *sql.Tx) error) error {
			return s.inTx(ctx, nil, fn)
		},
		Snapshot: func(ctx context.Context, fn func(tx *sql.Tx) error) error {
			return s.inTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, fn)
		},
		RowLocks:   true,
		LockEvents: lockEvents,
		LockSHAs:   lockSHAs,
		LockRoots:  lockRoots,
		LockRegistry: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `LOCK TABLE oci_manifests, oci_tags, oci_blobs IN SHARE ROW EXCLUSIVE MODE`)
			return err
		},
		Announce: s.announce,
		Conflict: conflict,
		NoSpace:  diskFull,
	}
}

// maxAttempts bounds the tries of one call when it fails retryably.
const maxAttempts = 5

// retry runs fn, again (up to maxAttempts in all, after a short random
// pause) when it fails retryably. fn must be safe to run again.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		pause := time.Duration(attempt) * (5*time.Millisecond + rand.N(20*time.Millisecond))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
}

// inTx runs fn in one transaction (READ COMMITTED unless opts say otherwise)
// and commits it if fn succeeds; retryable failures run the whole
// transaction again.
func (s *Store) inTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	return s.retry(ctx, func() error { return sqlstore.InTx(ctx, s.db, opts, fn) })
}

// SQLSTATEs the Store acts on.
const (
	codeUnique        = "23505"
	codeDiskFull      = "53100"
	codeSerialization = "40001"
	codeDeadlock      = "40P01"
	codeNotSupported  = "0A000" // also "cached plan must not change result type"
)

// retryable reports failures that another try may not meet: serialization
// failures, deadlocks, a prepared statement that a migration by another
// process made stale (pgx drops it on the error), and connection failures
// before anything was sent.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == codeSerialization || pe.Code == codeDeadlock ||
			pe.Code == codeNotSupported && strings.Contains(pe.Message, "cached plan")
	}
	return pgconn.SafeToRetry(err)
}

// conflict reports unique-key violations.
func conflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeUnique
}

// closeConn closes a connection that is not pooled (migration, LISTEN).
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// diskFull reports the server's disk_full: its disk is full.
func diskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeDiskFull
}
