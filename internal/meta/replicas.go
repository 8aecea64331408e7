package meta

import (
	"context"
	"time"
)

// Regions: the blob store may be replicated to several regions (see
// internal/blob/replica and docs/design.md, "Regions"). The primary region
// holds every blob; for each other region one row per blob digest says
// whether its copy is there. Rows live in the metadata store so that any
// process can replicate and any edge can tell which copies it may read.

// Replica states.
const (
	ReplicaPending  = "pending"  // the copy is to be made
	ReplicaReady    = "ready"    // the region holds the verified bytes
	ReplicaFailed   = "failed"   // the last try failed; retried at NextTryAt
	ReplicaDeleting = "deleting" // the blob was deleted; the region's copy is to be removed
)

// Classified failure reasons. Rows and the API carry these, never an
// internal error's text.
const (
	ReasonUnreachable = "unreachable"     // the region's store did not answer
	ReasonMismatch    = "digest-mismatch" // the bytes copied did not verify
	ReasonCorrupt     = "corrupt"         // a reader found the region's copy does not verify
	ReasonMissing     = "missing"         // a reader found no copy where one was ready
	ReasonSource      = "source"          // the primary could not be read
	ReasonError       = "error"           // anything else (logged by the replicator)
)

// ReplicaStatus is the state of one region's copy of a blob, as the API
// shows it in a release's "replicas".
type ReplicaStatus struct {
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`        // tries since the row became pending or deleting
	Error     string     `json:"error,omitempty"` // classified reason of the last failure
	NextTryAt *time.Time `json:"next_try_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Replica is one row: a blob digest ("sha256:…") in a region. Claim is the
// token of the replicator that claimed it ("" when unclaimed).
type Replica struct {
	Digest string
	Region string
	Claim  string
	ReplicaStatus
}

// Replicas tracks the copies of blobs in the non-primary regions. Stores
// implement it optionally; callers type-assert. Times come from the store's
// clock; every method is one transaction.
type Replicas interface {
	// AddReplicas records that digest must be copied to each region: a
	// missing row is inserted pending, due now; a failed or deleting row
	// becomes pending, due now, attempts 0, unclaimed (its Error, the last
	// failure's reason, stays until the row is ready); a pending or ready
	// row is kept as is.
	AddReplicas(ctx context.Context, digest string, regions []string) error
	// DeleteReplicas records that digest was deleted: its row in each region
	// (inserted if missing) becomes deleting, attempts 0, with Claim claim
	// and due after lease ("" and 0: unclaimed, due now). A deleter that
	// removes the copies itself claims the rows, so that it removes each row
	// (FinishReplica with its claim) only if nobody marked it again since.
	DeleteReplicas(ctx context.Context, digest string, regions []string, claim string, lease time.Duration) error
	// ClaimReplicas returns at most limit rows (limit <= 0: 100) that are
	// pending, failed or deleting and due (next_try_at <= now), earliest due
	// first. Each gets a fresh Claim, attempts+1 and next_try_at = now+lease,
	// so that no other caller claims it before the lease ends; the returned
	// rows carry the new values.
	ClaimReplicas(ctx context.Context, lease time.Duration, limit int) ([]Replica, error)
	// FinishReplica moves row r to state with reason, due again after
	// retryIn (ignored for ready), unclaimed; state "" removes the row. It
	// applies only if the row still has r's State and Claim, and reports
	// whether it did (false: the row changed or is gone). attempts is kept;
	// ready clears the reason. Unknown state: ErrInvalid.
	FinishReplica(ctx context.Context, r Replica, state, reason string, retryIn time.Duration) (bool, error)
	// ReplicaStatuses returns digest's rows by region (none: an empty map).
	// NextTryAt is set only for rows that are not ready.
	ReplicaStatuses(ctx context.Context, digest string) (map[string]ReplicaStatus, error)
}
