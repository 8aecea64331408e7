package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta"
)

// leaderCheck is how often a leader checks that its session (and so its
// lock) is still there.
const leaderCheck = time.Second

// TryLead takes the session advisory lock named name (keyed with the
// schema, so schemas sharing a database elect apart) on a connection of
// its own, pinned for as long as the leadership lasts: PostgreSQL
// releases the lock when that session ends, so a process that dies (even
// by SIGKILL) gives up its leadership as soon as the server sees its
// connection close. The connection is checked every second; when the
// check fails, lost is closed.
func (s *Store) TryLead(ctx context.Context, name string) (<-chan struct{}, func(), error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.cfg.Copy())
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: lead %q: %w", name, err)
	}
	var got bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock(hashtext($1), hashtext(current_schema()))`,
		"cairn-leader:"+name).Scan(&got); err != nil {
		conn.Close(context.Background())
		return nil, nil, fmt.Errorf("postgres: lead %q: %w", name, err)
	}
	if !got {
		conn.Close(context.Background())
		return nil, nil, fmt.Errorf("%w: leader %q is held by another session", meta.ErrConflict, name)
	}
	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(leaderCheck)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-s.ctx.Done():
				close(lost)
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(context.Background(), leaderCheck)
				err := conn.Ping(pctx)
				cancel()
				if err != nil {
					s.log.Warn("leadership lost: its session failed", "leader", name, "err", err)
					close(lost)
					return
				}
			}
		}
	}()
	release := func() {
		select {
		case <-stop:
			return // released already
		default:
		}
		close(stop)
		<-done
		// Unlock, then close: closing alone releases the lock only once
		// the session's backend has exited, after Close returns, so a
		// TryLead right after a release could still find it held.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1), hashtext(current_schema()))`, "cairn-leader:"+name)
		cancel()
		conn.Close(context.Background())
	}
	return lost, release, nil
}
