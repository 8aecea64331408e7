package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta/migrations"
)

// migrateLockKey is the advisory lock of migrations.Postgres.Lock. migrate
// holds it for the whole run, on one session, so that processes opening a
// fresh database together do not race on CREATE TABLE IF NOT EXISTS either
// (concurrent ones fail with a unique violation in pg_type).
const migrateLockKey = 7800

// migrate applies the migrations missing from schema_migrations, as
// migrations.Apply does (same ledger, one transaction per migration that also
// records it, the dialect's lock first in each), but on one dedicated
// connection that holds the migration lock throughout. It returns the schema
// the tables live in. (migrations.Apply cannot hold one session lock across
// its transactions, which PostgreSQL needs for concurrent first opens.)
func (s *Store) migrate(ctx context.Context) (string, error) {
	c, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return "", err
	}
	defer closeConn(c) // ends the session and so releases the lock
	var schema *string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", err
	}
	if schema == nil {
		return "", fmt.Errorf("no schema of the search_path exists")
	}
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return "", fmt.Errorf("migration lock: %w", err)
	}
	ms, err := migrations.All()
	if err != nil {
		return "", err
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`
	if _, err := c.Exec(ctx, create); err != nil {
		return "", fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return s.applyOne(ctx, tx, m) }); err != nil {
			return "", fmt.Errorf("migrations: %s (%s): %w", m.Name, s.d.Name, err)
		}
	}
	if _, err := c.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
		return "", err
	}
	return *schema, nil
}

// applyOne applies m inside tx unless it is already recorded.
func (s *Store) applyOne(ctx context.Context, tx pgx.Tx, m migrations.Migration) error {
	if _, err := tx.Exec(ctx, s.d.Lock); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).
		Scan(&n); err != nil || n > 0 {
		return err
	}
	for _, stmt := range m.Statements(s.d) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%.60q: %w", stmt, err)
		}
	}
	_, err := tx.Exec(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`),
		m.Version, s.stamp().UnixNano())
	return err
}
