package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
)

// Temporary files. A blob write (fs.Store.Put) goes through a file in the
// store's tmp directory that it removes on every path, but a process killed
// mid-write (kill -9, a crash, the OOM killer) leaves it behind. Every
// process sweeps the tmp directories of the file stores it opened: at start
// and then every --tmp-sweep-interval (default 5m) it removes the files
// untouched for --tmp-max-age (default 15m). A live write keeps touching its
// file; one that pauses longer than the age fails and stores nothing.
//
// The other scratch space cannot outlive its process: a publish's staging
// directory (DATA/staging/upload-*) is removed when the publish ends and
// the whole staging directory at start, and a registry chunk is spooled to
// a file unlinked as soon as it is created.

// tempStores are the blob stores with temporary files that this process
// opened (regions open lazily, hence the lock).
type tempStores struct {
	mu     sync.Mutex
	stores []blob.TempSweeper
}

// add remembers st if it keeps temporary files.
func (t *tempStores) add(st blob.Store) {
	if ts, ok := st.(blob.TempSweeper); ok {
		t.mu.Lock()
		t.stores = append(t.stores, ts)
		t.mu.Unlock()
	}
}

// sweep removes the temporary files of every store untouched since cutoff.
func (t *tempStores) sweep(ctx context.Context, cutoff time.Time) (int, error) {
	t.mu.Lock()
	stores := append([]blob.TempSweeper(nil), t.stores...)
	t.mu.Unlock()
	n := 0
	var errs []error
	for _, s := range stores {
		k, err := s.SweepTemp(ctx, cutoff)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// sweepTemp sweeps ts now and every interval until ctx ends, removing the
// files untouched for maxAge.
func sweepTemp(ctx context.Context, ts *tempStores, interval, maxAge time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := ts.sweep(ctx, time.Now().Add(-maxAge)); err != nil && ctx.Err() == nil {
			log.Warn("sweeping temporary files", "err", err)
		} else if n > 0 {
			log.Info("temporary files left by an interrupted write removed", "files", n, "older_than", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
