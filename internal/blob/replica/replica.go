// Package replica is the blob.Store over several regions: one primary that
// holds every blob and any number of other regions that hold copies.
//
//   - Put writes to the primary only (it is acknowledged once the primary
//     holds the verified bytes), then records the blob as pending in every
//     other region, in the metadata store (meta.Replicas), so that any
//     process can copy it, and wakes this process's Replicator.
//   - A Replicator copies pending and failed blobs from the primary to their
//     region (the region's Put verifies the digest) and marks each ready, or
//     failed with a classified reason and a next try after a bounded backoff.
//   - Open and Stat read the local region's copy once it is ready and has
//     been verified in full by this process (once per blob and region), and
//     otherwise fall back region by region, in configuration order, to the
//     primary. A copy that fails verification or is missing is never read:
//     it is reported (the row becomes failed, due now) and the next region
//     is tried. A region whose read failed is passed over for a few seconds.
//   - Delete deletes in every region; a region that cannot be reached keeps
//     a "deleting" row and the Replicator deletes its copy later.
//   - List lists the primary; ListStrays the copies only other regions hold.
//
// Replica states are cached in memory for a short TTL (Options.StateTTL).
package replica

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

var (
	_ blob.Store       = (*Store)(nil)
	_ blob.Locator     = (*Store)(nil)
	_ blob.StrayLister = (*Store)(nil)
)

// DefaultStateTTL is how long replica states are cached by default.
const DefaultStateTTL = 2 * time.Second

// Region is a named blob store.
type Region struct {
	Name  string
	Store blob.Store
}

// Options configures a Store.
type Options struct {
	// Local names the region whose copies reads prefer; "" means the primary.
	Local string
	// StateTTL is how long replica states read from the metadata are cached
	// (0: DefaultStateTTL; negative: not cached).
	StateTTL time.Duration
	// Log receives fallbacks and failed reports (default: nowhere).
	Log *slog.Logger
}

// Store is a blob.Store replicated over regions. It is safe for concurrent
// use, also by several processes sharing the regions and the metadata.
type Store struct {
	primary Region
	others  []Region
	names   []string          // of others
	byName  map[string]Region // every region
	order   []Region          // read order: local, the other non-primary regions, the primary last
	state   meta.Replicas
	log     *slog.Logger
	wake    chan struct{}
	states  stateCache
	checked verifiedSet
	flight  flight
	down    downSet
}

// New returns a Store that writes to primary and replicates to others,
// tracking the copies in state (which may be nil when others is empty).
// Region names must be unique and not empty; opts.Local must name one.
func New(primary Region, others []Region, state meta.Replicas, opts Options) (*Store, error) {
	s := &Store{primary: primary, others: others, byName: map[string]Region{}, state: state,
		log: opts.Log, wake: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range append([]Region{primary}, others...) {
		if r.Name == "" || r.Store == nil {
			return nil, fmt.Errorf("blob/replica: region %q: a name and a store are needed", r.Name)
		}
		if _, dup := s.byName[r.Name]; dup {
			return nil, fmt.Errorf("blob/replica: region %q given twice", r.Name)
		}
		s.byName[r.Name] = r
	}
	if len(others) > 0 && state == nil {
		return nil, errors.New("blob/replica: several regions need a metadata store that tracks replicas")
	}
	local := opts.Local
	if local == "" {
		local = primary.Name
	}
	if _, ok := s.byName[local]; !ok {
		return nil, fmt.Errorf("blob/replica: local region %q is not one of the regions", local)
	}
	if local != primary.Name {
		s.order = append(s.order, s.byName[local])
		for _, r := range others {
			if r.Name != local {
				s.order = append(s.order, r)
			}
		}
	}
	s.order = append(s.order, primary)
	for _, r := range others {
		s.names = append(s.names, r.Name)
	}
	s.states.ttl = opts.StateTTL
	if s.states.ttl == 0 {
		s.states.ttl = DefaultStateTTL
	}
	return s, nil
}

// Primary returns the primary region.
func (s *Store) Primary() Region { return s.primary }

// Wake tells this process's Replicator that work may be due. It never blocks.
func (s *Store) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Put stores the blob in the primary and then records it as pending in
// every other region. An error after the primary stored the bytes leaves
// them there (an unreferenced blob, as any failed publish may).
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if err := s.primary.Store.Put(ctx, d, size, r); err != nil {
		return err
	}
	if len(s.others) == 0 {
		return nil
	}
	if err := s.state.AddReplicas(ctx, string(d), s.names); err != nil {
		return fmt.Errorf("blob/replica: recording the copies of %s: %w", d, err)
	}
	s.states.forget(d)
	s.Wake()
	return nil
}

// deleteLease is how long Delete holds the rows it marks: past it, the
// Replicator finishes a deletion that Delete did not.
const deleteLease = 2 * time.Minute

// Delete deletes the blob in every region. The other regions' rows become
// "deleting" first, claimed by this deletion, so that no copy in flight is
// marked ready. A region whose copy is gone (or was never there) loses its
// row unless a copier marked it again meanwhile (its copy landed after
// this deletion looked: the Replicator deletes it); a region that fails
// keeps its row for the Replicator. The answer is the primary's
// (blob.ErrNotFound if it did not hold the blob): reads never serve a copy
// without a ready row.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := blob.ValidateDigest(d); err != nil {
		return err
	}
	claim := "delete-" + rand.Text()
	if len(s.others) > 0 {
		if err := s.state.DeleteReplicas(ctx, string(d), s.names, claim, deleteLease); err != nil {
			return fmt.Errorf("blob/replica: recording the deletion of %s: %w", d, err)
		}
	}
	s.forget(d)
	mine := func(region string) meta.Replica {
		return meta.Replica{Digest: string(d), Region: region, Claim: claim, ReplicaStatus: meta.ReplicaStatus{State: meta.ReplicaDeleting}}
	}
	perr := s.primary.Store.Delete(ctx, d)
	if perr != nil && !errors.Is(perr, blob.ErrNotFound) {
		for _, r := range s.others {
			s.handOver(ctx, mine(r.Name)) // the Replicator deletes the copies
		}
		return perr
	}
	for _, r := range s.others {
		err := r.Store.Delete(ctx, d)
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			s.log.Warn("blob/replica: delete failed, left to the replicator", "region", r.Name, "digest", d, "err", err)
			s.handOver(ctx, mine(r.Name))
			continue
		}
		ok, err := s.state.FinishReplica(ctx, mine(r.Name), "", "", 0)
		switch {
		case err != nil:
			s.log.Warn("blob/replica: removing a deleted replica's row", "region", r.Name, "digest", d, "err", err)
		case !ok:
			// Marked again: by a copier whose copy landed late (deleting,
			// left to the Replicator), or by a Put of the blob, whose copy
			// this deletion may just have removed.
			s.recopy(ctx, d, r.Name)
		}
	}
	s.forget(d)
	return perr
}

// handOver leaves the deletion of a copy to the Replicator: row, if this
// deletion still holds it, becomes unclaimed and due now. A row marked
// again meanwhile (a Put) is left as it is.
func (s *Store) handOver(ctx context.Context, row meta.Replica) {
	if _, err := s.state.FinishReplica(context.WithoutCancel(ctx), row, meta.ReplicaDeleting, "", 0); err != nil {
		s.log.Warn("blob/replica: handing a deletion to the replicator", "region", row.Region, "digest", row.Digest, "err", err)
	}
	s.Wake()
}

// recopy follows a change to d's row in region that may hide a Put of the
// blob: a deletion whose row changed while it deleted the copy (the Put had
// it copied again, and that copy is now gone), or a copier that marked the
// row deleting (the Put came between its look and its mark). If the
// primary holds the blob, the row is set pending (through deleting,
// whatever it was), so the Replicator copies it again. It wakes the
// Replicator either way.
func (s *Store) recopy(ctx context.Context, d digest.Digest, region string) {
	defer s.Wake()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if _, err := s.primary.Store.Stat(ctx, d); err != nil {
		return
	}
	err := s.state.DeleteReplicas(ctx, string(d), []string{region}, "", 0)
	if err == nil {
		err = s.state.AddReplicas(ctx, string(d), []string{region})
	}
	if err != nil {
		s.log.Warn("blob/replica: setting a row pending again after a deletion raced a Put", "region", region, "digest", d, "err", err)
	}
}

// List lists the primary's blobs.
func (s *Store) List(ctx context.Context, fn func(blob.Info) error) error {
	return s.primary.Store.List(ctx, fn)
}

// ListStrays lists, once each, the blobs that regions other than the
// primary hold and known does not report (known is what List gave the
// caller): a copy whose deletion there failed without a record, or one that
// landed after its blob was deleted and is not deleted again yet. Delete
// removes them (answering ErrNotFound: reads never serve them). A region
// that cannot be listed is logged and passed over; errors from fn are
// returned.
func (s *Store) ListStrays(ctx context.Context, known func(digest.Digest) bool, fn func(blob.Info) error) error {
	seen := map[digest.Digest]bool{}
	var fnErr error
	for _, r := range s.others {
		err := r.Store.List(ctx, func(info blob.Info) error {
			if seen[info.Digest] || known(info.Digest) {
				return nil
			}
			seen[info.Digest] = true
			fnErr = fn(info)
			return fnErr
		})
		switch {
		case fnErr != nil:
			return fnErr
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			s.log.Warn("blob/replica: listing a region failed, its strays wait for the next listing", "region", r.Name, "err", err)
		}
	}
	return nil
}

// URI names the primary's copy (blob.URIOf of the primary: never empty).
func (s *Store) URI(d digest.Digest) string {
	return blob.URIOf(s.primary.Store, d)
}

// forget drops what this process cached about d.
func (s *Store) forget(d digest.Digest) {
	s.states.forget(d)
	s.checked.forget(d)
}
