package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// Options are what a backend's Open takes: the clock, shared by every
// backend, and Own, the settings of that backend alone.
type Options[Own any] struct {
	// Now stamps records, events and migrations (default time.Now).
	Now func() time.Time
	Own Own
}

// Option configures a backend's Open; each backend names its own
// instance (sqlite.Option, postgres.Option).
type Option[Own any] func(*Options[Own])

// WithClock sets the clock that stamps records and events (default
// time.Now).
func WithClock[Own any](now func() time.Time) Option[Own] {
	return func(o *Options[Own]) { o.Now = now }
}

// Collect applies opts over own, the backend's defaults.
func Collect[Own any](own Own, opts []Option[Own]) Options[Own] {
	o := Options[Own]{Now: time.Now, Own: own}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// InTx runs fn in one transaction of db and commits it if fn succeeds.
func InTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
