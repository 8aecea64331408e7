package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairnhq/cairn/internal/meta"
)

// Channel is the LISTEN/NOTIFY channel of pointer changes. Its payload is a
// JSON object {"schema", "deployment_id", "hostname" (omitted if none)}:
// schema is where the change happened, since channels are per database.
const Channel = "cairn_changes"

type notice struct {
	Schema       string `json:"schema"`
	DeploymentID string `json:"deployment_id"`
	Hostname     string `json:"hostname,omitempty"`
}

// announce queues, inside tx, the notification of an event that moves a
// pointer or adds a version (sqlstore calls it for those only); PostgreSQL
// delivers it on commit, never on rollback, and folds identical ones of one
// transaction into one.
func (s *Store) announce(ctx context.Context, tx *sql.Tx, e meta.Event) error {
	b, err := json.Marshal(notice{Schema: s.schema, DeploymentID: e.DeploymentID, Hostname: e.Hostname})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, string(b))
	return err
}

// Listener timing: dialling and LISTEN take at most dialTimeout, the idle
// connection is pinged every pingEvery (so a dead one is noticed), and a lost
// one is redialled after a pause that doubles from minBackoff up to
// maxBackoff, with jitter.
const (
	dialTimeout = 5 * time.Second
	pingEvery   = 30 * time.Second
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 10 * time.Second
)

// Watch returns a channel that receives a value after each committed change
// of a pointer (activate, rollback, domain add or repoint, collect) or a new
// version, by this or any other process using the same schema. It holds a
// connection of its own that LISTENs on Channel, set up before Watch returns
// when the database answers within dialTimeout (else in the background, with
// the value sent once it listens). When that connection is lost, Watch redials with
// backoff and, once listening again, sends one value: changes may have been
// missed meanwhile, so the reader should resync. Sends never block; the
// channel has room for one value, so a slow reader sees one value for several
// changes. The channel is closed when ctx ends or the Store is closed.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch
	}
	s.wg.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	c, err := s.listen(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("postgres: watch: cannot listen yet", "err", err)
	}
	go func() {
		defer s.wg.Done()
		defer close(ch)
		defer stop()
		defer cancel()
		s.listenLoop(ctx, c, ch)
	}()
	return ch
}

// listen dials a connection and LISTENs on Channel, within dialTimeout.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := pgx.ConnectConfig(dctx, s.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(dctx, "LISTEN "+Channel); err != nil {
		closeConn(c)
		return nil, err
	}
	return c, nil
}

// listenLoop signals ch for the notifications on c and replaces c when it is
// lost (c nil: not connected yet), until ctx ends.
func (s *Store) listenLoop(ctx context.Context, c *pgx.Conn, ch chan struct{}) {
	backoff := minBackoff
	for {
		if c == nil {
			pause := backoff/2 + rand.N(backoff)
			backoff = min(2*backoff, maxBackoff)
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return
			}
			var err error
			if c, err = s.listen(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("postgres: watch: reconnect failed", "err", err, "retry_in", backoff)
				}
				continue
			}
			s.log.Info("postgres: watch: listening again")
			backoff = minBackoff
			signal(ch) // resync: notifications may have been missed
		}
		err := s.wait(ctx, c, ch)
		closeConn(c)
		c = nil
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: watch: listener connection lost", "err", err)
	}
}

// wait relays the notifications on c to ch until c fails or ctx ends.
func (s *Store) wait(ctx context.Context, c *pgx.Conn, ch chan struct{}) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := c.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if s.ours(n.Payload) {
				signal(ch)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err): // quiet for pingEvery: is the server still there?
			pctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err = c.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// ours reports whether a payload may concern this Store's schema. Payloads
// it cannot read count as ours: a spurious value is harmless, a lost one not.
func (s *Store) ours(payload string) bool {
	var n notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil || n.Schema == "" {
		return true
	}
	return n.Schema == s.schema
}

// signal sends on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
