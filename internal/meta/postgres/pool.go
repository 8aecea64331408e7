package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairnhq/cairn/internal/meta"
)

// querier is what *pgx.Conn and pgx.Tx share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// maxAttempts bounds the tries of one call when it fails retryably.
const maxAttempts = 5

// withConn runs fn on a pooled connection, again (up to maxAttempts in all,
// after a short random pause) when it fails retryably. fn must be safe to
// run again.
func (s *Store) withConn(ctx context.Context, fn func(c *pgx.Conn) error) error {
	for attempt := 1; ; attempt++ {
		c, err := s.pool.Acquire(ctx)
		if err == nil {
			err = fn(c.Conn())
			c.Release()
		}
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

// read runs fn on a pooled connection outside a transaction.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	return s.withConn(ctx, func(c *pgx.Conn) error { return fn(c) })
}

// update runs fn in one READ COMMITTED transaction and commits it if fn
// succeeds; retryable failures run the whole transaction again.
func (s *Store) update(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.withConn(ctx, func(c *pgx.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
}

// SQLSTATEs the Store acts on.
const (
	codeUnique        = "23505"
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

// mapErr wraps err with op, translating pgx.ErrNoRows to meta.ErrNotFound and
// unique-key violations to meta.ErrConflict.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = meta.ErrNotFound
	case errors.As(err, &pe) && pe.Code == codeUnique:
		err = fmt.Errorf("%w: %w", meta.ErrConflict, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// closeConn closes a connection that is not pooled (migration, LISTEN).
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}
