package postgres

import (
	"context"
	"database/sql"
	"slices"
)

// Lock order. A transaction that decides about releases takes, each kind
// in a fixed order and before the next kind:
//
//  1. the sha256 advisory locks (lockSHAs), sorted by key;
//  2. deployment rows, sorted by id: FOR SHARE by the collector, FOR UPDATE
//     (sqlstore's lockDeployment, one row) by every writer of a
//     deployment's versions, pointer, domains or policy;
//  3. release rows, then version rows;
//  4. the event lock (lockEvents).
//
// A writer holds its deployment row before it touches a release row, a
// version row of that deployment or the event lock, and the collector locks
// version rows only of deployments it holds FOR SHARE, so neither waits for
// the other in a cycle. The one exception, a version committed into another
// deployment while the collector waited for a release row, is a deadlock
// PostgreSQL detects; the transaction is then retried (see inTx).

// eventLockKey, with the schema's hash, names the transaction advisory lock
// under which events are appended (see sqlstore's appendEvent).
const eventLockKey = 7801

// lockEvents takes the event lock, held until tx ends.
func lockEvents(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, eventLockKey)
	return err
}

// shaLockKey, with a hash of the schema and the sha256, names the
// transaction advisory lock that serialises every decision about one
// sha256: HoldRelease, ClaimOrphan, MarkCollecting and CollectReleases take
// it first. It covers sha256s without a release row too (orphans, first
// publishes). Two sha256s whose keys collide only wait for each other.
const shaLockKey = 7802

// lockSHAs takes the advisory locks of shas, held until tx ends, in key
// order.
func lockSHAs(ctx context.Context, tx *sql.Tx, shas []string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, k) FROM (
		SELECT DISTINCT hashtext(current_schema() || ':' || sha) AS k FROM unnest($2::text[]) AS sha ORDER BY k
	) AS keys`, shaLockKey, shas)
	return err
}

// lockRoots takes, for the releases shas, every lock under which their
// roots are found (see the lock order above): their sha256 advisory locks
// (leases, claims and marks wait), the rows of the deployments that have
// versions of them FOR SHARE (activations, rollbacks, publishes, domain
// changes and policy changes of those deployments wait), and the release
// rows and the rows of their versions not collected FOR UPDATE. What roots
// them then cannot change until tx ends, except through the registry.
func lockRoots(ctx context.Context, tx *sql.Tx, shas []string) error {
	if err := lockSHAs(ctx, tx, shas); err != nil {
		return err
	}
	locked := map[string]bool{}
	lockDeps := func(query string) (bool, error) {
		var ids []string
		rows, err := tx.QueryContext(ctx, query, shas)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return false, err
			}
			if !locked[id] {
				ids = append(ids, id)
			}
		}
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return false, err
		}
		slices.Sort(ids)
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM deployments WHERE id = ANY($1) ORDER BY id FOR SHARE`, ids); err != nil {
			return false, err
		}
		for _, id := range ids {
			locked[id] = true
		}
		return true, nil
	}
	const depsOf = `SELECT DISTINCT deployment_id FROM versions
		WHERE artifact_sha256 = ANY($1) AND collected_at IS NULL`
	// A publish may add a version of shas in another deployment meanwhile:
	// read again until no deployment is new.
	for more := true; more; {
		var err error
		if more, err = lockDeps(depsOf); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM releases WHERE sha256 = ANY($1) ORDER BY sha256 FOR UPDATE`, shas); err != nil {
		return err
	}
	// One that committed while this waited for a release row: its
	// deployment is locked out of order (a deadlock is detected and retried).
	_, err := lockDeps(`SELECT DISTINCT v.deployment_id FROM (SELECT deployment_id FROM versions
		WHERE artifact_sha256 = ANY($1) AND collected_at IS NULL ORDER BY id FOR UPDATE) AS v`)
	return err
}
