package gc

import (
	"context"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// holdPoll is how often Hold re-checks a deletion in progress.
const holdPoll = 20 * time.Millisecond

// Hold takes a lease on release sha for an in-flight operation (a publish
// about to store its bytes and commit a version). The lease is a root, so
// no collection of sha commits while it is held, and it clears a
// "collecting" mark. If the bytes of sha are being deleted (a collection
// committed and holds a deletion claim), Hold waits until that deletion is
// over, so the caller's store of the bytes comes after it. The lease is
// renewed every LeaseTTL/3 until the returned drop is called (drop is safe
// to call twice). A store without meta.Leases needs no lease: Hold returns
// a no-op. Errors: ctx ending while waiting, or the store's.
func Hold(ctx context.Context, m meta.Store, sha string) (drop func(), err error) {
	l, ok := m.(meta.Leases)
	if !ok {
		return func() {}, nil
	}
	holder := ProcessOwner() + "/publish-" + randomID() // released if this process dies (lock.go)
	if err := Lease(ctx, m, sha, holder, LeaseTTL); err != nil {
		l.DropRelease(context.WithoutCancel(ctx), sha, holder)
		return nil, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.HoldRelease(context.WithoutCancel(ctx), sha, holder, LeaseTTL)
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

// Lease takes, or renews, holder's lease on release sha until the store's
// now+ttl, and like Hold waits while the bytes of sha are being deleted. It
// is not renewed by itself: the caller calls Lease again before ttl ends,
// and ends it with meta.Leases.DropRelease or lets it expire. A store
// without meta.Leases needs no lease. Errors: ctx ending while waiting (a
// lease taken stays until it expires), or the store's.
func Lease(ctx context.Context, m meta.Store, sha, holder string, ttl time.Duration) error {
	l, ok := m.(meta.Leases)
	if !ok {
		return nil
	}
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
