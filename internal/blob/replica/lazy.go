package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// ErrUnavailable: a region's store could not be opened (yet).
var ErrUnavailable = errors.New("blob/replica: region unavailable")

// DefaultReopen is how long Lazy waits before opening again after a failure.
const DefaultReopen = 5 * time.Second

// Lazy returns a blob.Store that opens its backend with open on first use,
// so that a region unreachable at start stops nothing but its own copies.
// A failed open is tried again on a call at least reopen (0: DefaultReopen)
// later; calls in between fail at once. Every failure to open wraps
// ErrUnavailable. Digests are validated before the backend is needed.
func Lazy(open func(context.Context) (blob.Store, error), reopen time.Duration) blob.Store {
	if reopen <= 0 {
		reopen = DefaultReopen
	}
	return &lazy{open: open, reopen: reopen, sem: make(chan struct{}, 1)}
}

var _ blob.Store = (*lazy)(nil)

type lazy struct {
	open   func(context.Context) (blob.Store, error)
	reopen time.Duration
	sem    chan struct{} // held while opening

	mu      sync.Mutex
	st      blob.Store
	failed  time.Time
	lastErr error
}

// get returns the backend, opening it if it is due.
func (l *lazy) get(ctx context.Context, d digest.Digest) (blob.Store, error) {
	if err := blob.ValidateDigest(d); err != nil && d != "" {
		return nil, err
	}
	if st := l.opened(); st != nil {
		return st, nil
	}
	select {
	case l.sem <- struct{}{}: // one open at a time
		defer func() { <-l.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	st, failed, lastErr := l.st, l.failed, l.lastErr
	l.mu.Unlock()
	if st != nil {
		return st, nil
	}
	if !failed.IsZero() && time.Since(failed) < l.reopen {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
	}
	st, err := l.open(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil { // a caller that gave up says nothing of the region
			l.failed, l.lastErr = time.Now(), err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.st = st
	return st, nil
}

func (l *lazy) opened() blob.Store {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *lazy) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	st, err := l.get(ctx, d)
	if err != nil {
		return err
	}
	return st.Put(ctx, d, size, r)
}

func (l *lazy) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	st, err := l.get(ctx, d)
	if err != nil {
		return nil, err
	}
	return st.Open(ctx, d, offset, length)
}

func (l *lazy) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	st, err := l.get(ctx, d)
	if err != nil {
		return blob.Info{}, err
	}
	return st.Stat(ctx, d)
}

func (l *lazy) Delete(ctx context.Context, d digest.Digest) error {
	st, err := l.get(ctx, d)
	if err != nil {
		return err
	}
	return st.Delete(ctx, d)
}

func (l *lazy) List(ctx context.Context, fn func(blob.Info) error) error {
	st, err := l.get(ctx, "")
	if err != nil {
		return err
	}
	return st.List(ctx, fn)
}
