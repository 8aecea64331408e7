package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
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
//     wait that long: at start (ReleaseDead), and whenever it finds the
//     lock held, it drops every lock, lease and deletion claim whose owner
//     is an instance of this host that is no longer alive (its PID is gone,
//     or is its own PID under another nonce). Nothing such a holder held is
//     in use any more: a dead process deletes no bytes and publishes
//     nothing. A live process is never judged dead: within one PID
//     namespace kill(pid, 0) finds it.
//
// A publish's lease (Hold) carries its owner too, so a restart also ends the
// leases of the publishes the dead instance had in flight. The leases of
// registry upload sessions ("upload-…") belong to sessions, not processes:
// they are left to expire.

// processOwner is this process instance's owner id. Its HOST is the host
// name and, on Linux, the PID namespace ("name~pid:[4026531836]"): two
// containers may share a host name (host networking) but not see each
// other's PIDs, and a PID is judged only where it can be seen.
var processOwner = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		host += "~" + ns
	}
	return fmt.Sprintf("%s/%d/%s", strings.ReplaceAll(host, "/", "_"), os.Getpid(), randomID())
})

// ProcessOwner returns the owner id of this process instance,
// "HOST/PID/NONCE": the default Config.Owner, and the owner of the leases
// Hold takes.
func ProcessOwner() string { return processOwner() }

// owner is a parsed owner id.
type owner struct {
	host  string
	pid   int
	nonce string
}

// parseOwner parses "HOST/PID/NONCE", alone or as the start of a holder
// ("HOST/PID/NONCE/WHAT"); ok is false for other holders.
func parseOwner(s string) (o owner, ok bool) {
	parts := strings.SplitN(s, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[2] == "" {
		return owner{}, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{parts[0], pid, parts[2]}, true
}

// dead reports whether o is an instance of self's host that is not alive:
// self itself under an earlier nonce (a restart with the same PID, as in a
// container), or a PID that no process has any more. Owners on other hosts
// are never judged: their locks expire.
func (o owner) dead(self owner) bool {
	switch {
	case o.host != self.host:
		return false
	case o.pid == self.pid:
		return o.nonce != self.nonce
	}
	err := syscall.Kill(o.pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// ReleaseDead drops every lock, lease and deletion claim whose holder is an
// instance of self's host (self is an owner id, ProcessOwner()) that is no
// longer alive, and returns how many holders it dropped. A store without
// meta.Leases has none.
func ReleaseDead(ctx context.Context, m meta.Store, self string) (int, error) {
	l, ok := m.(meta.Leases)
	if !ok {
		return 0, nil
	}
	me, ok := parseOwner(self)
	if !ok {
		return 0, fmt.Errorf("gc: owner %q is not HOST/PID/NONCE", self)
	}
	holders, err := l.Holders(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range holders {
		if o, ok := parseOwner(h); !ok || !o.dead(me) {
			continue
		}
		if err := l.DropHolder(ctx, h); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// acquire takes the runner lock for holder; held by a dead instance of this
// host, it is released first.
func (c *Collector) acquire(ctx context.Context, holder string) (bool, error) {
	ok, err := c.g.AcquireLock(ctx, LockName, holder, LockTTL)
	if err != nil || ok {
		return ok, err
	}
	n, err := ReleaseDead(ctx, c.cfg.Meta, c.cfg.Owner)
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
