package replica

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// Replicator defaults.
const (
	DefaultWorkers    = 4
	DefaultPoll       = 2 * time.Second
	DefaultLease      = 15 * time.Minute
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultBackfill   = time.Hour
)

// ReplicatorOptions tunes a Replicator; zero fields take the defaults.
type ReplicatorOptions struct {
	Workers int           // copies and deletes in flight
	Poll    time.Duration // how often the queue is read without a Wake
	// Lease is how long a claimed row is reserved for this process; it also
	// bounds one copy or delete.
	Lease time.Duration
	// After the n-th failed try the next waits MinBackoff·2^(n-1), capped at
	// MaxBackoff, and jittered down by up to a half. Failed rows are retried
	// forever, at least every MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Backfill is how often every blob of the primary is recorded again
	// (AddReplicas), which queues blobs stored before a region was added and
	// retries failed rows at once; negative: only at start.
	Backfill time.Duration
	Log      *slog.Logger
}

// Replicator works through the replica rows of a Store: it copies pending
// and failed blobs from the primary to their region and deletes the copies
// of deleted blobs. Any number of processes may run one on the same
// metadata (rows are claimed with a lease); each needs write access to
// every region and read access to the primary.
type Replicator struct {
	s *Store
	o ReplicatorOptions
}

// NewReplicator returns the Replicator of s. Run it once per Store.
func NewReplicator(s *Store, o ReplicatorOptions) *Replicator {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	def(&o.Poll, DefaultPoll)
	def(&o.Lease, DefaultLease)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	if o.Backfill == 0 {
		o.Backfill = DefaultBackfill
	}
	if o.Log == nil {
		o.Log = s.log
	}
	return &Replicator{s: s, o: o}
}

// Run replicates until ctx ends, then waits for the work in flight.
func (r *Replicator) Run(ctx context.Context) {
	if len(r.s.others) == 0 {
		return
	}
	backfilled := make(chan struct{})
	go func() { defer close(backfilled); r.backfillLoop(ctx) }()
	slots := make(chan struct{}, r.o.Workers)
	freed := make(chan struct{}, 1)
	defer func() {
		for range cap(slots) {
			slots <- struct{}{} // waits for every worker
		}
		<-backfilled
	}()
	for ctx.Err() == nil {
		free := cap(slots) - len(slots)
		n := 0
		if free > 0 {
			rows, err := r.s.state.ClaimReplicas(ctx, r.o.Lease, free)
			if err != nil && ctx.Err() == nil {
				r.o.Log.Warn("blob/replica: claiming replicas", "err", err)
			}
			for _, x := range rows {
				slots <- struct{}{}
				go func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					r.handle(ctx, x)
				}()
			}
			n = len(rows)
		}
		if n > 0 && n == free {
			continue // more may be due
		}
		t := time.NewTimer(r.o.Poll)
		select {
		case <-ctx.Done():
		case <-r.s.wake:
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Sync handles every row due now, waits for the work to finish and
// returns how many rows it handled.
func (r *Replicator) Sync(ctx context.Context) (int, error) {
	rows, err := r.s.state.ClaimReplicas(ctx, r.o.Lease, 1000)
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, r.o.Workers)
	for _, x := range rows {
		sem <- struct{}{}
		go func() { defer func() { <-sem }(); r.handle(ctx, x) }()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	return len(rows), nil
}

// Backfill records every blob of the primary as to be copied to every
// other region (rows already pending or ready are kept).
func (r *Replicator) Backfill(ctx context.Context) error {
	var ds []digest.Digest
	if err := r.s.primary.Store.List(ctx, func(i blob.Info) error { ds = append(ds, i.Digest); return nil }); err != nil {
		return err
	}
	for _, d := range ds {
		if err := r.s.state.AddReplicas(ctx, string(d), r.s.names); err != nil {
			return err
		}
	}
	r.s.Wake()
	return nil
}

func (r *Replicator) backfillLoop(ctx context.Context) {
	for {
		if err := r.Backfill(ctx); err != nil && ctx.Err() == nil {
			r.o.Log.Warn("blob/replica: backfill", "err", err)
		}
		if r.o.Backfill < 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.o.Backfill):
		}
	}
}

// backoff is the wait before the try after attempts failed ones.
func (r *Replicator) backoff(attempts int) time.Duration {
	d := r.o.MaxBackoff
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 30 {
		d = min(d, r.o.MinBackoff<<(attempts-1))
	}
	return d - rand.N(d/2+1)
}

// srcReader remembers a failure reading the primary.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

var errGone = errors.New("blob/replica: no longer in the primary")

// copyTo copies d from the primary to dst; dst's Put verifies it.
func (r *Replicator) copyTo(ctx context.Context, dst blob.Store, d digest.Digest) error {
	info, err := r.s.primary.Store.Stat(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return errGone
	}
	if err != nil {
		return &sourceError{err}
	}
	rc, err := r.s.primary.Store.Open(ctx, d, 0, -1)
	if err != nil {
		return &sourceError{err}
	}
	defer rc.Close()
	src := &srcReader{r: rc}
	err = dst.Put(ctx, d, info.Size, src)
	if err != nil && src.err != nil {
		return &sourceError{err}
	}
	return err
}
