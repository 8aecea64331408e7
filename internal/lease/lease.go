// Package lease takes the leases that keep a release's bytes from the
// garbage collector while an operation is in flight (a publish, a derive,
// a registry upload session), and names the process instance that holds
// them (owner.go). A lease is a root for internal/gc: no collection of the
// leased sha256 commits while it lasts, and taking one waits out a deletion
// of its bytes in progress. The leases live in the metadata store
// (meta.Leases); this package holds no state of its own.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// TTL is a publisher's lease, renewed while it lasts. The collector's grace
// period must stay longer.
const TTL = 10 * time.Minute

// holdPoll is how often Hold re-checks a deletion in progress.
const holdPoll = 20 * time.Millisecond

// Hold takes a lease on release sha for an in-flight operation (a publish
// about to store its bytes and commit a version). The lease is a root, so
// no collection of sha commits while it is held, and it clears a
// "collecting" mark. If the bytes of sha are being deleted (a collection
// committed and holds a deletion claim), Hold waits until that deletion is
// over, so the caller's store of the bytes comes after it. The lease is
// renewed every TTL/3 until the returned drop is called (drop is safe
// to call twice). Errors: ctx ending while waiting, or the store's.
func Hold(ctx context.Context, l meta.Leases, sha string) (drop func(), err error) {
	holder := ProcessOwner() + "/publish-" + randomID() // released if this process dies (owner.go)
	if err := Take(ctx, l, sha, holder, TTL); err != nil {
		l.DropRelease(context.WithoutCancel(ctx), sha, holder)
		return nil, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.HoldRelease(context.WithoutCancel(ctx), sha, holder, TTL)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			l.DropRelease(bg, sha, holder)
		})
	}, nil
}

// Take takes, or renews, holder's lease on release sha until the store's
// now+ttl, and like Hold waits while the bytes of sha are being deleted. It
// is not renewed by itself: the caller calls Take again before ttl ends,
// and ends it with meta.Leases.DropRelease or lets it expire. Errors: ctx
// ending while waiting (a lease taken stays until it expires), or the
// store's.
func Take(ctx context.Context, l meta.Leases, sha, holder string, ttl time.Duration) error {
	for {
		deleting, err := l.HoldRelease(ctx, sha, holder, ttl)
		if err != nil || !deleting {
			return err
		}
		if err := sleep(ctx, holdPoll); err != nil {
			return err
		}
	}
}

// sleep waits d of real time, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// randomID returns 16 hex digits.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
