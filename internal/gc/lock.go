package gc

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/lease"
)

// The runner lock is tied to a live process. Its holder names the process
// instance that runs the collection (its owner, "HOST/PID/NONCE": the host
// name with the PID namespace, the PID, and a nonce drawn at the process's
// start) and the run ("…/gc-RANDOM"). While a run
// lasts, a heartbeat renews the lock every Heartbeat (10 s) for LockTTL
// (30 s); a run whose renewal finds the lock taken stops (ErrBusy). So:
//
//   - a process that dies (kill -9, a crash) stops renewing, and its lock is
//     free LockTTL later, for every process sharing the metadata store;
//   - a process that restarts on the same host (and PID namespace) does not
//     wait that long: at start (lease.ReleaseDead), and whenever it finds the
//     lock held, it drops every lock, lease and deletion claim whose owner
//     is an instance of this host that is no longer alive (its PID is gone,
//     or is its own PID under another nonce). Nothing such a holder held is
//     in use any more: a dead process deletes no bytes and publishes
//     nothing. A live process is never judged dead: within one PID
//     namespace kill(pid, 0) finds it (internal/lease/owner.go).

// acquire takes the runner lock for holder; held by a dead instance of this
// host, it is released first.
func (c *Collector) acquire(ctx context.Context, holder string) (bool, error) {
	ok, err := c.g.AcquireLock(ctx, LockName, holder, LockTTL)
	if err != nil || ok {
		return ok, err
	}
	n, err := lease.ReleaseDead(ctx, c.cfg.Meta, c.cfg.Owner)
	if err != nil || n == 0 {
		return false, err
	}
	c.cfg.Log.Info("gc: released the locks of a dead process", "holders", n)
	return c.g.AcquireLock(ctx, LockName, holder, LockTTL)
}

// errLost ends a run whose lock another holder took.
var errLost = fmt.Errorf("gc: lost the runner lock: %w", ErrBusy)

// heartbeat renews holder's lock every Heartbeat until stop is called. The
// returned context ends with cause errLost when a renewal finds the lock
// taken; a failed renewal is retried at the next beat.
func (c *Collector) heartbeat(ctx context.Context, holder string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ok, err := c.g.AcquireLock(ctx, LockName, holder, LockTTL)
			switch {
			case err != nil && ctx.Err() == nil:
				c.cfg.Log.Warn("gc: renewing the runner lock", "err", err)
			case err == nil && !ok:
				cancel(errLost)
				return
			}
		}
	}()
	return ctx, func() {
		close(quit)
		<-done
		cancel(nil)
	}
}
