package meta

import (
	"context"
	"sort"
	"time"
)

// Garbage collection of releases (see internal/gc and docs/design.md).
//
// A release is kept while a root references it: a lease, the registry, an
// active version, a version a domain is pinned to, one of the newest
// keep_versions archived versions of its deployment, or a version inside its
// retention window. Versions reach a release by its sha256, so one rooted
// version keeps the bytes of every version sharing them.

// Root reasons, strongest first.
const (
	RootLease = "lease" // an in-flight publish holds the sha256
	// RootRegistry: the OCI registry keeps a row for the digest. Without an
	// OCIGC store that is every row; with one the collector first deletes
	// the rows no root reaches (see OCIGC), so the rows left are reachable
	// from a rooted version's manifest, a tag or a recent push.
	RootRegistry     = "registry"
	RootActive       = "active"        // a deployment's active version
	RootDomain       = "domain"        // a domain is pinned to the version
	RootKeepVersions = "keep_versions" // among the newest N archived versions
	RootRetention    = "retention"     // archived less than retention_days ago
)

// RootSource: a version's source snapshot, inside the deployment's
// source_retention_days from the version's publish (collected or not).
// RootBuilder: the builder of a build made from a snapshot so rooted.
// RootBuild: a queued or running build's snapshot or builder.
const (
	RootSource  = "source"
	RootBuilder = "builder"
	RootBuild   = "build"
)

var rootRank = map[string]int{RootLease: 0, RootRegistry: 1, RootActive: 2, RootDomain: 3, RootKeepVersions: 4, RootRetention: 5,
	RootDerived: 6, RootSource: 7, RootBuilder: 8, RootBuild: 9}

// Root is why a release must be kept: the strongest root found, and the
// version that holds it (none for lease and registry).
type Root struct {
	Reason        string     `json:"root"`
	DeploymentID  string     `json:"deployment_id,omitempty"`
	VersionID     string     `json:"version_id,omitempty"`
	VersionNumber int64      `json:"version_number,omitempty"`
	Until         *time.Time `json:"until,omitempty"` // retention: when the window ends
}

// GCDeployment is the collection policy of a deployment.
type GCDeployment struct {
	ID              string
	ActiveVersionID *string
	RetentionDays   int
	KeepVersions    int
	// SourceRetentionDays: how long the snapshots of its versions are kept.
	SourceRetentionDays int
}

// GCSource is a version (collected or not) whose source_sha256 names a
// stored snapshot.
type GCSource struct {
	DeploymentID  string
	VersionID     string
	VersionNumber int64
	SHA256        string
	CreatedAt     time.Time
}

// GCBuilder says that a succeeded build ran Builder on snapshot Source.
type GCBuilder struct {
	Source  string
	Builder string
}

// GCVersion is what root finding needs of a version that is not collected.
type GCVersion struct {
	ID            string
	DeploymentID  string
	VersionNumber int64
	SHA256        string
	CreatedAt     time.Time
	ArchivedAt    *time.Time
	Pinned        bool // a domain points at it
}

// archiveTime is when v stopped being live: archived_at, or created_at for a
// version never activated.
func (v *GCVersion) archiveTime() time.Time {
	if v.ArchivedAt != nil {
		return *v.ArchivedAt
	}
	return v.CreatedAt
}

// GCRelease is a release row as the collector sees it.
type GCRelease struct {
	SHA256       string
	Kind         string
	SizeBytes    int64
	CollectedAt  *time.Time // set in the collecting transaction
	CollectingAt *time.Time // marked: collectable once the grace period passed
}

// GCSnapshot is one consistent read of everything root finding needs.
type GCSnapshot struct {
	Deployments []GCDeployment
	Versions    []GCVersion // every version not collected
	Releases    []GCRelease // every release, collected or not
	Leased      map[string]bool
	Claimed     map[string]bool      // sha256s with an unexpired deletion claim
	External    map[string]bool      // sha256s the registry references
	Orphans     map[string]time.Time // digest ("sha256:…") → first seen as an orphan
	Derived     []Derived            // derived artifacts (see Roots)
	Sources     []GCSource           // versions with a source snapshot
	Builders    []GCBuilder          // which builders built from which snapshots
	Building    map[string]bool      // snapshots and builders of queued or running builds
}

// Roots returns the strongest root of every release that has one at now;
// releases absent from the map are unrooted.
func (s *GCSnapshot) Roots(now time.Time) map[string]Root {
	roots := map[string]Root{}
	held := map[string]Root{} // the strongest root by a version (what derived artifacts inherit)
	add := func(sha string, r Root) {
		if cur, ok := roots[sha]; !ok || rootRank[r.Reason] < rootRank[cur.Reason] {
			roots[sha] = r
		}
		if r.Reason == RootLease || r.Reason == RootRegistry {
			return
		}
		if cur, ok := held[sha]; !ok || rootRank[r.Reason] < rootRank[cur.Reason] {
			held[sha] = r
		}
	}
	for sha, ok := range s.Leased {
		if ok {
			add(sha, Root{Reason: RootLease})
		}
	}
	for sha, ok := range s.External {
		if ok {
			add(sha, Root{Reason: RootRegistry})
		}
	}
	byDep := map[string][]*GCVersion{}
	for i := range s.Versions {
		v := &s.Versions[i]
		byDep[v.DeploymentID] = append(byDep[v.DeploymentID], v)
	}
	for _, d := range s.Deployments {
		var archived []*GCVersion
		for _, v := range byDep[d.ID] {
			held := func(reason string) Root {
				return Root{Reason: reason, DeploymentID: d.ID, VersionID: v.ID, VersionNumber: v.VersionNumber}
			}
			if d.ActiveVersionID != nil && *d.ActiveVersionID == v.ID {
				add(v.SHA256, held(RootActive))
				continue
			}
			archived = append(archived, v)
			if v.Pinned {
				add(v.SHA256, held(RootDomain))
			}
			if until := v.archiveTime().Add(time.Duration(d.RetentionDays) * 24 * time.Hour); now.Before(until) {
				r := held(RootRetention)
				r.Until = &until
				add(v.SHA256, r)
			}
		}
		sort.Slice(archived, func(i, j int) bool {
			a, b := archived[i].archiveTime(), archived[j].archiveTime()
			if !a.Equal(b) {
				return a.After(b)
			}
			return archived[i].VersionNumber > archived[j].VersionNumber
		})
		for _, v := range archived[:min(d.KeepVersions, len(archived))] {
			add(v.SHA256, Root{Reason: RootKeepVersions, DeploymentID: d.ID, VersionID: v.ID, VersionNumber: v.VersionNumber})
		}
	}
	s.deriveRoots(held, add)
	s.sourceRoots(now, add)
	return roots
}

// sourceRoots roots each snapshot inside its deployment's
// source_retention_days from its version's publish, and the builders of
// the builds made from the snapshots so rooted.
func (s *GCSnapshot) sourceRoots(now time.Time, add func(string, Root)) {
	days := map[string]int{}
	for _, d := range s.Deployments {
		days[d.ID] = d.SourceRetentionDays
	}
	rooted := map[string]Root{}
	for _, v := range s.Sources {
		until := v.CreatedAt.Add(time.Duration(days[v.DeploymentID]) * 24 * time.Hour)
		if _, ok := days[v.DeploymentID]; !ok || !now.Before(until) {
			continue
		}
		r := Root{Reason: RootSource, DeploymentID: v.DeploymentID, VersionID: v.VersionID, VersionNumber: v.VersionNumber, Until: &until}
		add(v.SHA256, r)
		rooted[v.SHA256] = r
	}
	for _, b := range s.Builders {
		if r, ok := rooted[b.Source]; ok {
			r.Reason = RootBuilder
			add(b.Builder, r)
		}
	}
	for sha, ok := range s.Building {
		if ok {
			add(sha, Root{Reason: RootBuild})
		}
	}
}

// deriveRoots roots each derived artifact whose source a version roots
// (directly, or through the artifact it derives from in turn: an erofs
// image of a rootfs flattened from an OCI version). Leases and the
// registry do not pass on: a tagged image keeps its manifest, not the
// rootfs made from it. The root names the version.
func (s *GCSnapshot) deriveRoots(held map[string]Root, add func(string, Root)) {
	for changed := true; changed; {
		changed = false
		for _, d := range s.Derived {
			src, ok := held[d.SourceSHA256]
			if !ok {
				continue
			}
			if _, ok := held[d.SHA256]; ok {
				continue
			}
			add(d.SHA256, Root{Reason: RootDerived, DeploymentID: src.DeploymentID, VersionID: src.VersionID,
				VersionNumber: src.VersionNumber})
			changed = true
		}
	}
}

// Leases are time-bounded holds kept in the metadata store, so that they
// work across processes. Times are the store's clock. Part of meta.Full;
// its consumers declare it (internal/lease, gc.Store, registry.Store).
type Leases interface {
	// HoldRelease takes, or renews, holder's lease on release sha256 until
	// now+ttl and clears the release's collecting mark, in one transaction.
	// A leased sha256 is a root. deleting reports an unexpired deletion claim
	// on it: its bytes may be being deleted, so the holder must not store them
	// until a later call reports false.
	HoldRelease(ctx context.Context, sha256, holder string, ttl time.Duration) (deleting bool, err error)
	// DropRelease ends holder's lease; no lease is not an error.
	DropRelease(ctx context.Context, sha256, holder string) error
	// RenewLeases extends every lease of holder that is unexpired at now
	// to now+ttl, in one statement, and returns how many it extended. An
	// expired lease is left alone: its bytes may be deleted meanwhile, so
	// it is taken again with HoldRelease, which reports that. Unlike
	// HoldRelease it takes no lock on the sha256s, so a lease renewed in
	// its last moments may race a deletion claim: renew well before the
	// leases end.
	RenewLeases(ctx context.Context, holder string, ttl time.Duration) (int64, error)
	// AcquireLock takes, or renews, the exclusive lock name for holder until
	// now+ttl. Held by another holder and not expired: false, nil.
	AcquireLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLock ends holder's lock; not holding it is not an error.
	ReleaseLock(ctx context.Context, name, holder string) error
	// Holders lists, sorted and once each, every holder of a lock, a lease
	// or a deletion claim, expired or not.
	Holders(ctx context.Context) ([]string, error)
	// DropHolder ends every lock, lease and deletion claim of holder at
	// once: its process died, and nothing it held is in use any more.
	DropHolder(ctx context.Context, holder string) error
}

// GC is the garbage collection of the metadata store; part of meta.Full,
// declared by gc.Store. Every method is one transaction, and each decision is made on
// roots re-found inside it at now (GCSnapshot.Roots on the rows the
// transaction reads), serialised with every pointer change and HoldRelease:
// on SQLite by the single writer; a PostgreSQL backend must lock the release
// row and its versions' rows (SELECT … FOR UPDATE) before finding roots, and
// its pointer changes must write the version row guarded by collected_at IS NULL.
type GC interface {
	Leases
	// GCSnapshot reads the snapshot in one read transaction; Leased and
	// Claimed hold the leases and claims unexpired at now.
	GCSnapshot(ctx context.Context, now time.Time) (*GCSnapshot, error)
	// MarkCollecting sets collecting_at = now on each release of shas that is
	// not collected and has no root (a mark already set restarts), and clears
	// the mark of the others, whose roots it returns. Unknown sha256s are
	// skipped.
	MarkCollecting(ctx context.Context, shas []string, now time.Time) (map[string]Root, error)
	// CollectReleases collects, in one transaction, each release of shas
	// that was marked at or before markedBefore and still has no root: the
	// release gets collected_at = now; every version of it not yet collected
	// gets status "collected", collected_at = now and a "collect" event
	// (actor "gc"); a deletion claim (holder, until now+ttl) is recorded. The
	// caller deletes the bytes, then drops the claims. A root found instead
	// clears the mark (the collection is cancelled). Releases not marked,
	// marked later, already collected or unknown are skipped. It returns one
	// Collection per release collected or cancelled, and notifies watchers.
	CollectReleases(ctx context.Context, shas []string, markedBefore, now time.Time, holder string, ttl time.Duration) ([]Collection, error)
	// ClaimOrphan records a deletion claim on sha256 if its blob is an orphan
	// at now: no release row or a collected one, no lease, no other claim and
	// no registry reference. It reports whether the claim was recorded.
	ClaimOrphan(ctx context.Context, sha256, holder string, now time.Time, ttl time.Duration) (bool, error)
	// DropClaims ends holder's deletion claims on shas.
	DropClaims(ctx context.Context, holder string, shas ...string) error
	// NoteOrphans records the orphan digests seen at now, forgets the ones
	// no longer seen, and returns when each was first seen.
	NoteOrphans(ctx context.Context, digests []string, now time.Time) (map[string]time.Time, error)
	// PruneLeases deletes leases and claims expired at now.
	PruneLeases(ctx context.Context, now time.Time) error
}

// Collection is what CollectReleases did with one release.
type Collection struct {
	SHA256   string
	Versions []Version // collected: the versions that became collected (maybe none)
	Root     *Root     // cancelled: the root found; nil when collected
}

// Policy holds the collection settings of a deployment; nil leaves a field.
type Policy struct {
	RetentionDays *int // 0 allowed: archived versions are collectable at once
	KeepVersions  *int
	SPA           *bool // the site settings of a static deployment
	CleanURLs     *bool
	ProxyRewrites *bool
	// SourceRetentionDays: how long source snapshots are kept (0 allowed).
	SourceRetentionDays *int
}

// Policies is implemented by stores that keep retention_days exactly as
// given (0 included) and keep_versions; callers type-assert.
type Policies interface {
	// CreateDeploymentWithPolicy is CreateDeployment, except that
	// d.RetentionDays is stored as given, 0 included, and d.KeepVersions too.
	// Negative values: ErrInvalid.
	CreateDeploymentWithPolicy(ctx context.Context, d *Deployment, actor string) error
	// SetPolicy changes the fields of p that are set, with one
	// "deployment.update" event (before/after) if anything changed, and
	// returns the stored deployment. ErrNotFound, ErrInvalid.
	SetPolicy(ctx context.Context, id string, p Policy, actor string) (*Deployment, error)
}

// History answers which version and release served a hostname (or a
// deployment's own name) at a time, as found in the event log.
type History struct {
	At           time.Time `json:"at"`
	Hostname     string    `json:"hostname,omitempty"` // a custom domain; empty for a deployment
	DeploymentID string    `json:"deployment_id"`
	// FollowsActive: the domain followed the deployment's active version.
	FollowsActive bool `json:"follows_active"`
	// Since is when the pointer that decided it last moved (its event).
	Since   time.Time `json:"since"`
	EventID int64     `json:"event_id"`
	Version *Version  `json:"version"`
	Release *Release  `json:"release"`
}
