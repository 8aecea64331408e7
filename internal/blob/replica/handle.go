package replica

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// finishTimeout bounds the metadata write that records an outcome.
const finishTimeout = 10 * time.Second

// handle does the work of claimed row x and records the outcome. A failure
// after ctx ended is not recorded: the lease runs out and the row is
// claimed again. Work that got done is always recorded.
func (r *Replicator) handle(ctx context.Context, x meta.Replica) {
	d := digest.Digest(x.Digest)
	defer r.s.states.forget(d)
	region, ok := r.s.byName[x.Region]
	if !ok || region.Name == r.s.primary.Name {
		// Another process knows this region; leave the row to it.
		r.o.Log.Warn("blob/replica: row for a region not configured here", "region", x.Region, "digest", d)
		r.finish(ctx, x, x.State, x.Error, r.o.MaxBackoff)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, r.o.Lease)
	defer cancel()
	if x.State == meta.ReplicaDeleting {
		err := region.Store.Delete(wctx, d)
		if err == nil || errors.Is(err, blob.ErrNotFound) {
			if !r.finish(ctx, x, "", "", 0) {
				r.s.recopy(ctx, d, x.Region)
			}
			return
		}
		r.fail(ctx, x, x.State, err)
		return
	}
	var err error
	if x.Error == meta.ReasonCorrupt { // Put would keep the bad copy
		if err = region.Store.Delete(wctx, d); errors.Is(err, blob.ErrNotFound) {
			err = nil
		}
	}
	if err == nil {
		err = r.copyTo(wctx, region.Store, d)
	}
	switch {
	case errors.Is(err, errGone):
		// Deleted meanwhile: delete what an earlier try may have copied.
		r.finish(ctx, x, meta.ReplicaDeleting, "", 0)
	case err != nil:
		r.fail(ctx, x, meta.ReplicaFailed, err)
	case !r.finish(ctx, x, meta.ReplicaReady, "", 0):
		r.lost(ctx, x, d)
	default:
		r.s.checked.add(d, region.Name+"\x00"+string(d)) // its Put verified the bytes
	}
}

// lost handles a copy made for a row that changed meanwhile. If the
// primary no longer holds the blob, it was deleted while this copy was
// made, maybe after the deletion looked here: the region's row becomes
// deleting, unclaimed and due now, so the Replicator deletes the copy (a
// deleter holding the row then leaves it). A Put of the blob between the
// look and the mark sets the row pending again. If the primary holds the
// blob, or cannot say, the copy is a good one and the row's new owner
// settles it.
func (r *Replicator) lost(ctx context.Context, x meta.Replica, d digest.Digest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if _, err := r.s.primary.Store.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
		return
	}
	if err := r.s.state.DeleteReplicas(ctx, x.Digest, []string{x.Region}, "", 0); err != nil {
		r.o.Log.Warn("blob/replica: after a copy whose row changed", "region", x.Region, "digest", d, "err", err)
	}
	r.s.recopy(ctx, d, x.Region) // a Put between the look and the mark
}

// fail records a failed try of x, logging the error; the row shows only
// its classified reason.
func (r *Replicator) fail(ctx context.Context, x meta.Replica, state string, err error) {
	if ctx.Err() != nil {
		return
	}
	reason := Classify(err)
	wait := r.backoff(x.Attempts)
	r.o.Log.Warn("blob/replica: try failed", "region", x.Region, "digest", x.Digest, "state", x.State,
		"attempts", x.Attempts, "reason", reason, "retry_in", wait, "err", err)
	r.finish(ctx, x, state, reason, wait)
}

// finish records the outcome of x and reports whether it applied.
func (r *Replicator) finish(ctx context.Context, x meta.Replica, state, reason string, retryIn time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	ok, err := r.s.state.FinishReplica(ctx, x, state, reason, retryIn)
	if err != nil {
		r.o.Log.Warn("blob/replica: recording an outcome", "region", x.Region, "digest", x.Digest, "err", err)
	}
	return ok
}

// sourceError is a failure reading the primary.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the primary: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// Classify maps a failure to the short reason rows and the API show.
func Classify(err error) string {
	var src *sourceError
	var nerr net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &src):
		return meta.ReasonSource
	case errors.Is(err, blob.ErrDigestMismatch):
		return meta.ReasonMismatch
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &nerr):
		return meta.ReasonUnreachable
	}
	return meta.ReasonError
}
