// Package meta owns the metadata records (deployments, versions, releases,
// domains, events) and the backends that store them.
//
// Every pointer change (activate, rollback, domain repoint) is one transaction
// that also appends its audit event.
package meta

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	ErrNotFound = errors.New("meta: not found")
	ErrConflict = errors.New("meta: conflict") // unique key taken (deployment name, hostname)
	ErrGone     = errors.New("meta: version collected")
	ErrInvalid  = errors.New("meta: invalid argument")
)

// Release kinds.
const (
	KindStatic = "static"
	KindOCI    = "oci"
	KindRootfs = "rootfs"
)

// Version statuses.
const (
	StatusReady     = "ready"     // stored and verified, never activated
	StatusActive    = "active"    // the deployment's active version
	StatusArchived  = "archived"  // was active, is no longer
	StatusCollected = "collected" // its release bytes were garbage collected
)

// Event actions appended by the stores. Pointer moves (activate, rollback,
// domain.repoint) carry a detail {"before": id|null, "after": id|null}.
const (
	ActionDeploymentCreate = "deployment.create"
	ActionDeploymentUpdate = "deployment.update"
	ActionPublish          = "publish"
	ActionActivate         = "activate"
	ActionRollback         = "rollback"
	ActionDomainAdd        = "domain.add"
	ActionDomainRepoint    = "domain.repoint"
	ActionCollect          = "collect"
)

// Deployment is an app or site.
type Deployment struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Kind            string    `json:"kind"`
	ActiveVersionID *string   `json:"active_version_id"`
	RetentionDays   int       `json:"retention_days"`
	CreatedAt       time.Time `json:"created_at"`
}

// Manifest is derived from a release's table of contents.
type Manifest struct {
	Files      int64  `json:"files"`
	TotalBytes int64  `json:"total_bytes"`
	Entrypoint string `json:"entrypoint"`
}

// Version is one publish of a deployment.
type Version struct {
	ID               string     `json:"id"`
	DeploymentID     string     `json:"deployment_id"`
	VersionNumber    int64      `json:"version_number"`
	Status           string     `json:"status"`
	SourceSHA256     string     `json:"source_sha256"`
	ArtifactURI      string     `json:"artifact_uri"`
	ArtifactSHA256   string     `json:"artifact_sha256"`
	ArtifactManifest Manifest   `json:"artifact_manifest"`
	CreatedAt        time.Time  `json:"created_at"`
	ArchivedAt       *time.Time `json:"archived_at"`
	CollectedAt      *time.Time `json:"collected_at"`
}

// Release is the built bytes, named by their sha256 (hex, no prefix).
type Release struct {
	SHA256      string     `json:"sha256"`
	Kind        string     `json:"kind"`
	SizeBytes   int64      `json:"size_bytes"`
	URI         string     `json:"uri"`
	TreeSHA256  string     `json:"tree_sha256,omitempty"` // sha256 of the canonical uncompressed tar
	CreatedAt   time.Time  `json:"created_at"`
	CollectedAt *time.Time `json:"collected_at"`
}

// Domain is a hostname that serves a deployment: pinned to VersionID, or
// following the deployment's active version when VersionID is nil.
type Domain struct {
	Hostname     string    `json:"hostname"`
	DeploymentID string    `json:"deployment_id"`
	VersionID    *string   `json:"version_id"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Event is one entry of the append-only audit log.
type Event struct {
	ID            int64           `json:"id"`
	At            time.Time       `json:"at"`
	Actor         string          `json:"actor"`
	Action        string          `json:"action"`
	DeploymentID  string          `json:"deployment_id,omitempty"`
	VersionID     string          `json:"version_id,omitempty"`
	Hostname      string          `json:"hostname,omitempty"`
	ReleaseSHA256 string          `json:"release_sha256,omitempty"`
	Detail        json.RawMessage `json:"detail,omitempty"`
}

// NewVersion is the input of CreateVersion.
type NewVersion struct {
	DeploymentID string
	SourceSHA256 string
	Release      Release  // inserted if no release with this SHA256 exists yet
	Manifest     Manifest // artifact_manifest
	Activate     bool     // make it the active version in the same transaction
	Actor        string
}

// EventFilter selects events. Zero values mean "any".
type EventFilter struct {
	DeploymentID string
	Since        time.Time // events with At >= Since
	AfterID      int64     // events with ID > AfterID
	Limit        int       // 0 means a backend default (1000)
}

// Deployments stores deployment records.
type Deployments interface {
	// CreateDeployment fills ID (if empty, "dep_"+random), CreatedAt and a zero
	// RetentionDays (30). Name taken: ErrConflict. Empty name, unknown kind or
	// negative retention: ErrInvalid.
	CreateDeployment(ctx context.Context, d *Deployment, actor string) error
	// GetDeployment finds a deployment by id ("dep_…") or by name. ErrNotFound.
	GetDeployment(ctx context.Context, idOrName string) (*Deployment, error)
	// ListDeployments returns every deployment, ordered by name.
	ListDeployments(ctx context.Context) ([]Deployment, error)
	// UpdateDeployment stores the mutable fields (retention_days) of d, found by d.ID
	// (ErrNotFound), and refreshes *d from the stored record: other fields are ignored.
	UpdateDeployment(ctx context.Context, d *Deployment, actor string) error
}

// Versions stores versions and the releases they point at.
type Versions interface {
	// CreateVersion, in one transaction: inserts the release if absent, assigns the
	// next version_number of the deployment, inserts the version (status ready, or
	// active when nv.Activate, archiving the previously active one), and appends a
	// "publish" event (plus "activate" when activating). Unknown deployment:
	// ErrNotFound. Release sha256 not 64 lowercase hex digits, or a release kind
	// (empty means the deployment's) other than the deployment's: ErrInvalid.
	CreateVersion(ctx context.Context, nv NewVersion) (*Version, error)
	GetVersion(ctx context.Context, id string) (*Version, error)
	GetVersionByNumber(ctx context.Context, deploymentID string, n int64) (*Version, error)
	// ListVersions returns versions newest first, with version_number < before
	// (before <= 0 means no bound), at most limit (limit <= 0 means 100).
	// Unknown deployment: ErrNotFound.
	ListVersions(ctx context.Context, deploymentID string, limit int, before int64) ([]Version, error)
	// Activate makes version n the deployment's active version in one transaction
	// with its event (action is "activate" or "rollback"). Collected version: ErrGone.
	// The previously active version becomes archived (archived_at = now).
	// Missing deployment or version: ErrNotFound. Activating the version that is
	// already active changes nothing, appends no event and returns the deployment.
	Activate(ctx context.Context, deploymentID string, n int64, actor, action string) (*Deployment, error)
	// PreviousActive returns the version that was active most recently before the
	// current active one (the default rollback target), even if it has since been
	// collected. None: ErrNotFound.
	PreviousActive(ctx context.Context, deploymentID string) (*Version, error)
	GetRelease(ctx context.Context, sha256 string) (*Release, error)
}

// Domains stores custom hostnames.
type Domains interface {
	// CreateDomain inserts d (hostname lower-cased by the caller). Taken: ErrConflict.
	// Pinned to a collected version: ErrGone. A pinned version must exist (ErrNotFound)
	// and belong to d.DeploymentID (ErrInvalid). Fills CreatedAt and UpdatedAt.
	// Appends a "domain.add" event.
	CreateDomain(ctx context.Context, d *Domain, actor string) error
	GetDomain(ctx context.Context, hostname string) (*Domain, error)
	// ListDomains returns every domain, ordered by hostname.
	ListDomains(ctx context.Context) ([]Domain, error)
	// SetDomainVersion pins the domain to versionID, or makes it follow the active
	// version when versionID is nil, with a "domain.repoint" event. ErrGone if collected;
	// the version checks of CreateDomain apply. Unknown hostname: ErrNotFound.
	SetDomainVersion(ctx context.Context, hostname string, versionID *string, actor string) (*Domain, error)
}

// Events reads the audit log.
type Events interface {
	// ListEvents returns the events matching f ordered by id (oldest first).
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
}

// Store is the whole metadata backend.
type Store interface {
	Deployments
	Versions
	Domains
	Events
	Close() error
}

// Watcher is implemented by stores that announce pointer changes (activate,
// rollback, domain changes, new versions). The channel receives a value after
// each committed change and is closed when ctx ends. Sends never block: a slow
// reader may see one value for several changes.
type Watcher interface {
	Watch(ctx context.Context) <-chan struct{}
}
