// Package meta owns the metadata records (deployments, versions, releases,
// domains, events, tokens) and the backends that store them.
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
	StatusReady     = "ready"     // published, never active yet (archived_at = publish time: retention counts from there)
	StatusActive    = "active"    // the deployment's active version
	StatusArchived  = "archived"  // active once, no longer (archived_at = when it stopped being active)
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
	ActionDomainRemove     = "domain.remove"
	ActionDomainHTTPS      = "domain.https"
	ActionDeploymentDelete = "deployment.delete"
	ActionCollect          = "collect"
	// ActionDerive: a derived artifact was recorded (PutDerived), once per
	// (kind, source); actor "derive", release_sha256 the derived release,
	// detail {"kind", "source_sha256"}.
	ActionDerive = "derive"
)

// Deployment is an app or site.
type Deployment struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Kind            string  `json:"kind"`
	ActiveVersionID *string `json:"active_version_id"`
	RetentionDays   int     `json:"retention_days"`
	KeepVersions    int     `json:"keep_versions"` // the newest N archived versions are never collected
	// ActivateOnPush (oci): a push of this tag activates the version it
	// names; "" (the default): a push never activates anything.
	ActivateOnPush string    `json:"activate_on_push"`
	CreatedAt      time.Time `json:"created_at"`
	// DeletedAt is set while the deployment is deleted: no active version,
	// every version archived, no domain. Publishing to it again undeletes it.
	DeletedAt *time.Time `json:"deleted_at,omitempty"`

	// SPA: the edge answers unknown paths of requests that accept HTML with
	// the entrypoint, status 200 (static deployments).
	SPA bool `json:"spa"`
	// CleanURLs: the edge serves /about from about.html and redirects
	// /about.html to /about with a 308 (static deployments).
	CleanURLs bool `json:"clean_urls"`
	// ProxyRewrites: _redirects rules that rewrite (200) to an external
	// http(s) URL are allowed at publish time and proxied by the edge; off,
	// such a publish is refused and the edge never proxies (static
	// deployments).
	ProxyRewrites bool `json:"proxy_rewrites"`
	// SourceRetentionDays: how long the source snapshot of a version is
	// kept after its publish (default 365), longer than its release, so
	// that a collected version can be restored by a rebuild.
	SourceRetentionDays int `json:"source_retention_days"`
	// URL is where the edge serves the deployment, made by the API from its
	// public edge URL (static deployments only; not stored).
	URL string `json:"url,omitempty"`
	// ActiveVersionNumber is the version_number of the active version, in
	// the API's answers (not stored).
	ActiveVersionNumber int64 `json:"active_version_number,omitempty"`
	// Desired (dynamic deployments) and Rollout (the newest rollout, if
	// any) are filled by the API, not stored with the row.
	Desired *Desired `json:"desired,omitempty"`
	Rollout *Rollout `json:"rollout,omitempty"`
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
	// Warnings are what the publish warned about (a site without its
	// entrypoint, so / answers 404), for users who missed the CLI's line.
	Warnings []string `json:"warnings,omitempty"`
	// Tags (oci): the tags of the deployment's repository that point at the
	// version's manifest now, in lexical order. A tag moved by a later push
	// leaves the version.
	Tags []string `json:"tags,omitempty"`
	// URL (while the version is active) and PreviewURL (always) are where
	// the edge serves it, made by the API from its public edge URL (static
	// deployments only; not stored).
	URL        string `json:"url,omitempty"`
	PreviewURL string `json:"preview_url,omitempty"`
	// Runtime is how a dynamic (rootfs) version runs; nil for static.
	Runtime *Runtime `json:"runtime,omitempty"`
	// SourceSnapshot: SourceSHA256 names a stored source snapshot (not
	// just the digest of an upload), kept for the deployment's
	// source_retention_days.
	SourceSnapshot bool `json:"source_snapshot,omitempty"`
	// Build is how the platform built the version (nil: built elsewhere),
	// Rebuild its newest rebuild's verdict (nil: never rebuilt).
	Build   *VersionBuild `json:"build,omitempty"`
	Rebuild *Rebuild      `json:"rebuild,omitempty"`
}

// Runtime are the settings a runtime host starts a dynamic version with.
// Cmd is also the version's artifact_manifest.entrypoint (its words joined
// by spaces).
type Runtime struct {
	Cmd         []string          `json:"cmd"`
	Env         map[string]string `json:"env,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
	User        string            `json:"user,omitempty"`
	Port        int               `json:"port"` // the app listens on it, passed as $PORT (default 8080)
	HealthCheck *HealthCheck      `json:"health_check,omitempty"`
}

// HealthCheck is an HTTP GET of Path on the instance's port, every
// Interval, failing after Timeout (Go durations, e.g. "10s").
type HealthCheck struct {
	Path     string `json:"path"`
	Interval string `json:"interval"`
	Timeout  string `json:"timeout"`
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
	Hostname     string  `json:"hostname"`
	DeploymentID string  `json:"deployment_id"`
	VersionID    *string `json:"version_id"`
	// HTTPSRedirect sends the domain's plain HTTP requests to HTTPS (308);
	// HSTS adds Strict-Transport-Security to its HTTPS responses.
	HTTPSRedirect bool      `json:"https_redirect"`
	HSTS          bool      `json:"hsts"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
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
	// PrevHash and Hash chain the log (see EventHash): Hash is the sha256 of
	// the event's canonical encoding, which includes PrevHash, the Hash of the
	// event before it. Both are "" on events appended before the chain existed.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// NewVersion is the input of CreateVersion.
type NewVersion struct {
	DeploymentID string
	SourceSHA256 string
	Release      Release  // inserted if no release with this SHA256 exists yet
	Manifest     Manifest // artifact_manifest
	Runtime      *Runtime // dynamic versions only
	Activate     bool     // make it the active version in the same transaction
	Actor        string
	Warnings     []string // what the publish warned about, kept in the record
	// SourceSnapshot: SourceSHA256 names a stored source snapshot; Build
	// records the platform build that made the version.
	SourceSnapshot bool
	Build          *VersionBuild
	// NewDeployment, when set, is created in the same transaction, with its
	// "deployment.create" event, as CreateDeploymentWithPolicy does
	// (RetentionDays and KeepVersions stored as given), and DeploymentID is
	// ignored; on success *NewDeployment is the stored record.
	NewDeployment *Deployment
}

// EventFilter selects events. Zero values mean "any".
type EventFilter struct {
	DeploymentID string
	Hostname     string    // events of this domain
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
	// DeleteDeployment, in one transaction with a "deployment.delete" event:
	// archives every version that is active or ready (ready ones keep their
	// archived_at, so retention counts from their publish), clears the
	// pointer and sets deleted_at; the edge serves no host of a deleted
	// deployment, previews included.
	// Domains pointing at the deployment: ErrConflict, unless force, which
	// removes them first (a "domain.remove" event each). Rows stay for audit;
	// GC collects the releases on its usual rules. Already deleted: no change,
	// no event. Unknown: ErrNotFound.
	DeleteDeployment(ctx context.Context, id string, force bool, actor string) (*Deployment, error)
}

// Versions stores versions and the releases they point at.
type Versions interface {
	// CreateVersion, in one transaction: inserts the release if absent, assigns the
	// next version_number of the deployment, inserts the version (status ready, or
	// active when nv.Activate, archiving the previously active one), and appends a
	// "publish" event (plus "activate" when activating). Unknown deployment:
	// ErrNotFound. With nv.NewDeployment the deployment is inserted first in the
	// same transaction (name taken: ErrConflict): a publish that fails leaves
	// no deployment. Release sha256 not 64 lowercase hex digits, or a release kind
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
	// SetDomainHTTPS sets the domain's HTTPSRedirect and HSTS, with a
	// "domain.https" event. Unknown hostname: ErrNotFound.
	SetDomainHTTPS(ctx context.Context, hostname string, redirect, hsts bool, actor string) (*Domain, error)
	// DeleteDomain removes the domain with a "domain.remove" event. Unknown:
	// ErrNotFound.
	DeleteDomain(ctx context.Context, hostname string, actor string) error
}

// Events reads the audit log.
type Events interface {
	// ListEvents returns the events matching f ordered by id (oldest first).
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// LastEvent returns the newest event, whose Hash is the head of the hash
	// chain (see EventHash). An empty log: ErrNotFound.
	LastEvent(ctx context.Context) (*Event, error)
}

// Store is the whole metadata backend.
type Store interface {
	Deployments
	Versions
	Domains
	Events
	// Ping answers once the database answers a trivial query (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Watcher is implemented by stores that announce pointer changes (activate,
// rollback, domain changes, new versions). The channel receives a value after
// each committed change and is closed when ctx ends. Sends never block: a slow
// reader may see one value for several changes.
type Watcher interface {
	Watch(ctx context.Context) <-chan struct{}
}

// OCIRepository is a repository of the OCI registry. Its name is the name of
// the deployment it belongs to, or that name followed by "/" and a path.
type OCIRepository struct {
	Name         string    `json:"name"`
	DeploymentID string    `json:"deployment_id"`
	CreatedAt    time.Time `json:"created_at"`
}

// OCIBlob records that a repository may serve a blob (a layer or config)
// whose bytes live once in the shared blob store.
type OCIBlob struct {
	Digest string `json:"digest"` // "sha256:…" or "sha512:…"
	Size   int64  `json:"size"`
}

// OCIManifest is a manifest stored in a repository; its bytes live in the
// blob store under Digest. Subject, ArtifactType and Annotations are what the
// referrers API answers with.
type OCIManifest struct {
	Repository   string            `json:"repository"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	Size         int64             `json:"size"`
	Subject      string            `json:"subject,omitempty"`       // digest of the subject, "" if none
	ArtifactType string            `json:"artifact_type,omitempty"` // artifactType, else the config's media type (images)
	Annotations  map[string]string `json:"annotations,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
}

// Registry stores what the OCI registry knows beyond the bytes: repositories,
// which repository may serve which blob, manifests, tags and the per-deployment
// anonymous-pull flag. Part of meta.Full, declared by registry.Store.
//
// Contract: digests are stored as given (the caller validates them); a
// repository must exist (PutOCIRepository) before blobs, manifests or tags are
// stored in it, else ErrNotFound. Every method is one transaction.
type Registry interface {
	// PutOCIRepository creates the repository unless it exists and fills
	// CreatedAt from the stored row. Unknown deployment: ErrNotFound. The name
	// taken by another deployment: ErrConflict.
	PutOCIRepository(ctx context.Context, r *OCIRepository) error
	// GetOCIRepository finds a repository by name. ErrNotFound.
	GetOCIRepository(ctx context.Context, name string) (*OCIRepository, error)
	// ListOCIRepositories returns at most n repository names (n <= 0: all)
	// after last, in byte-wise lexical order.
	ListOCIRepositories(ctx context.Context, last string, n int) ([]string, error)

	// LinkOCIBlob lets repo serve b; linking a linked blob changes nothing.
	LinkOCIBlob(ctx context.Context, repo string, b OCIBlob) error
	// GetOCIBlob returns the blob if repo may serve it, else ErrNotFound.
	GetOCIBlob(ctx context.Context, repo, digest string) (*OCIBlob, error)
	// OCIBlobRepositories lists, by name, the repositories that hold digest
	// as a blob or as a manifest (none: an empty list). While it lists any,
	// the bytes are in use: the garbage collector asks it too.
	OCIBlobRepositories(ctx context.Context, digest string) ([]string, error)
	// UnlinkOCIBlob removes the link (the bytes stay). Not linked: ErrNotFound.
	UnlinkOCIBlob(ctx context.Context, repo, digest string) error

	// PutOCIManifest stores m unless repo already has that digest (the stored
	// record is kept) and, when tag is not empty, points tag at it.
	PutOCIManifest(ctx context.Context, m *OCIManifest, tag string) error
	// GetOCIManifest finds a manifest by repository and digest. ErrNotFound.
	GetOCIManifest(ctx context.Context, repo, digest string) (*OCIManifest, error)
	// DeleteOCIManifest removes the manifest and every tag pointing at it.
	// Unknown: ErrNotFound.
	DeleteOCIManifest(ctx context.Context, repo, digest string) error
	// OCIReferrers returns the manifests of repo whose subject is subject,
	// with the given artifact type unless artifactType is "", ordered by digest.
	OCIReferrers(ctx context.Context, repo, subject, artifactType string) ([]OCIManifest, error)

	// ResolveOCITag returns the digest tag points at. ErrNotFound.
	ResolveOCITag(ctx context.Context, repo, tag string) (string, error)
	// ListOCITags returns at most n tags of repo (n <= 0: all) in lexical
	// order, all after last when last is not "".
	ListOCITags(ctx context.Context, repo, last string, n int) ([]string, error)
	// DeleteOCITag removes a tag (the manifest stays). Unknown: ErrNotFound.
	DeleteOCITag(ctx context.Context, repo, tag string) error

	// OCIVersionByDigest returns the newest version of the deployment whose
	// release is the manifest digest ("sha256:…") and is not collected.
	// None: ErrNotFound.
	OCIVersionByDigest(ctx context.Context, deploymentID, digest string) (*Version, error)
	// SetOCIActivateOnPush stores the deployment's activate_on_push tag ("":
	// none) with a "deployment.update" event (before/after) when it changes,
	// and returns the stored deployment. ErrNotFound.
	SetOCIActivateOnPush(ctx context.Context, deploymentID, tag, actor string) (*Deployment, error)

	// SetOCIAnonymousPull allows or forbids pulls without credentials from
	// every repository of a deployment (default: forbidden). ErrNotFound.
	SetOCIAnonymousPull(ctx context.Context, deploymentID string, allow bool) error
	// OCIAnonymousPull reports the flag; an unknown deployment reports false.
	OCIAnonymousPull(ctx context.Context, deploymentID string) (bool, error)
}
