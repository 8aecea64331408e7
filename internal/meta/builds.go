package meta

import (
	"context"
	"time"
)

// Sources, builds and rebuilds (docs/design.md, "Sources, builds and
// rebuilds").

// KindSource is the kind of a release that holds a source snapshot: a
// tree in cairn's release format, named by its sha256.
const KindSource = "source"

// Build kinds.
const (
	BuildKindBuild   = "build"   // makes a new version from a snapshot
	BuildKindRebuild = "rebuild" // runs a version's recorded build again and compares
	BuildKindRestore = "restore" // rebuilds a collected version's release and stores it again if it matches
)

// Build states.
const (
	BuildQueued    = "queued"
	BuildRunning   = "running"   // a host claimed it
	BuildFinishing = "finishing" // its host sent the result; the server is storing what it made
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
)

// BuildQueueTTL: a build queued this long fails (no host claimed it).
// BuildRunTTL: a build running or finishing this long after its claim
// fails (past the longest timeout a build may ask, with slack for the
// host's fetches and the result's upload).
const (
	BuildQueueTTL = time.Hour
	BuildRunTTL   = 90 * time.Minute
)

// Rebuild verdicts.
const (
	VerdictReproducible = "reproducible" // the rebuild gave the recorded sha256
	VerdictDiffers      = "differs"      // it did not; Differs names the entries
)

// Event actions of builds.
const (
	// ActionBuild: a build, rebuild or restore ended; detail {"build_id",
	// "kind", "state", "error"?, "artifact_sha256"?}.
	ActionBuild = "build"
	// ActionRebuild: a version's rebuild verdict was recorded; detail
	// {"build_id", "verdict", "sha256", "differs"}.
	ActionRebuild = "rebuild"
	// ActionRestore: a collected version's release was rebuilt to its
	// recorded sha256 and stored again; detail {"build_id"}.
	ActionRestore = "restore"
)

// MaxBuildLog is how many bytes of a build's log are kept: its last ones.
const MaxBuildLog = 256 << 10

// DefaultSourceRetentionDays is a deployment's source_retention_days when
// unset.
const DefaultSourceRetentionDays = 365

// BuildSpec is what a build runs: the snapshot, the builder, the command.
// A rebuild and a restore copy the spec of the version's build.
type BuildSpec struct {
	SourceSHA256    string            `json:"source_sha256"`
	SourceTree      string            `json:"source_tree"`
	Builder         string            `json:"builder"`      // sha256 of the builder's rootfs release
	BuilderTree     string            `json:"builder_tree"` // its tree digest
	BuilderRef      string            `json:"builder_ref"`  // as asked: "NAME:N"
	Command         string            `json:"command"`
	Output          string            `json:"output"`
	Env             map[string]string `json:"env,omitempty"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	Timeout         string            `json:"timeout"`
	MemoryBytes     int64             `json:"memory_bytes"`
	Entrypoint      string            `json:"entrypoint,omitempty"`
	Activate        bool              `json:"activate"`
	// Network: the build ran with an address on the host's bridge and
	// egress (asked for); its output may depend on what the network
	// served. Without it a build has loopback only.
	Network bool `json:"network,omitempty"`
}

// Build is one build, rebuild or restore.
type Build struct {
	ID         string `json:"id"` // "bld_…"
	Deployment string `json:"deployment"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	// VersionNumber: the version rebuilt or restored; for a build, the
	// version it made (0 until it succeeded).
	VersionNumber int64  `json:"version_number,omitempty"`
	PinHost       string `json:"pin_host,omitempty"` // only this host may run it
	Host          string `json:"host,omitempty"`     // the host that ran it
	BuildSpec
	Actor          string     `json:"actor"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
	DurationMS     int64      `json:"duration_ms"`
	ExitCode       *int       `json:"exit_code"`
	Error          string     `json:"error,omitempty"`
	ArtifactSHA256 string     `json:"artifact_sha256,omitempty"`
	LogSHA256      string     `json:"log_sha256,omitempty"`
	LogBytes       int64      `json:"log_bytes"` // of the kept log
	Verdict        string     `json:"verdict,omitempty"`
	Differs        []string   `json:"differs,omitempty"`
}

// VersionBuild is a version's record of the build that made it.
type VersionBuild struct {
	BuildID         string            `json:"build_id"`
	Builder         string            `json:"builder"`
	BuilderRef      string            `json:"builder_ref,omitempty"`
	Command         string            `json:"command"`
	Output          string            `json:"output"`
	Env             map[string]string `json:"env,omitempty"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	Timeout         string            `json:"timeout,omitempty"`      // what rebuilds run with
	MemoryBytes     int64             `json:"memory_bytes,omitempty"` // likewise
	Network         bool              `json:"network,omitempty"`      // likewise: it ran with network (BuildSpec.Network)
	DurationMS      int64             `json:"duration_ms"`
	LogSHA256       string            `json:"log_sha256"`
}

// Rebuild is a version's newest rebuild verdict.
type Rebuild struct {
	BuildID string    `json:"build_id"`
	Verdict string    `json:"verdict"`
	At      time.Time `json:"at"`
	SHA256  string    `json:"sha256"`            // what the rebuild gave
	Differs []string  `json:"differs,omitempty"` // TOC paths whose entries differ
}

// BuildEnd is how a claimed build ended, as FinishBuild records it.
type BuildEnd struct {
	State          string // BuildSucceeded or BuildFailed
	DurationMS     int64
	ExitCode       *int
	Error          string
	ArtifactSHA256 string
	Log            string // at most MaxBuildLog bytes
	LogSHA256      string
	LogBytes       int64 // of the kept log
	Verdict        string
	Differs        []string
}

// Builds stores build records; part of meta.Full.
type Builds interface {
	// CreateBuild stores b (state queued), filling ID and CreatedAt.
	// Unknown kind, empty deployment or spec sha256s that are not
	// hex: ErrInvalid. Its snapshot or builder not stored (collected
	// meanwhile): ErrGone.
	CreateBuild(ctx context.Context, b *Build) error
	// GetBuild finds a build by id. ErrNotFound.
	GetBuild(ctx context.Context, id string) (*Build, error)
	// ListBuilds returns a deployment's builds, newest first, at most
	// limit (0: 100).
	ListBuilds(ctx context.Context, deployment string, limit int) ([]Build, error)
	// BuildLog returns the kept log of a build. ErrNotFound.
	BuildLog(ctx context.Context, id string) (string, error)
	// ClaimBuild gives the oldest queued build that host may run (not
	// pinned, or pinned to it) to host: state running, started_at now.
	// None: ErrNotFound. A host claims only when idle, so a build still
	// running on it was cut short (its agent restarted): it fails first.
	ClaimBuild(ctx context.Context, host string) (*Build, error)
	// StartFinishing moves build id, running on host, to finishing: its
	// result is being stored. Not running on host (a second delivery of
	// the same result): ErrConflict.
	StartFinishing(ctx context.Context, id, host string) (*Build, error)
	// FinishBuild records how build id, running or finishing on host,
	// ended, with an ActionBuild event, and returns the record. Neither:
	// ErrConflict. For a build that made a version, set VersionNumber
	// with SetBuildVersion in the same flow before.
	FinishBuild(ctx context.Context, id, host string, end BuildEnd) (*Build, error)
	// SetBuildVersion records the version a build made.
	SetBuildVersion(ctx context.Context, id string, n int64) error
	// PutSourceRelease inserts a release of kind source unless its
	// sha256 is known (a collected one is revived with rel's URI),
	// records that deployment (a name) may name it, and returns the
	// stored row.
	PutSourceRelease(ctx context.Context, deployment string, rel Release) (*Release, error)
	// SourceOwned reports whether deployment (a name) uploaded snapshot
	// sha.
	SourceOwned(ctx context.Context, deployment, sha string) (bool, error)
	// RecordRebuild stores r as version id's rebuild verdict with an
	// ActionRebuild event.
	RecordRebuild(ctx context.Context, versionID string, r Rebuild, actor string) error
	// RestoreVersion revives the collected release of version id, stored
	// again with its recorded sha256 at uri: the release is no longer
	// collected, and every collected version of it in the version's
	// deployment becomes archived with archived_at now (retention counts
	// from the restore), with an ActionRestore event. The version not
	// collected: ErrConflict.
	RestoreVersion(ctx context.Context, versionID, uri, buildID, actor string) (*Version, error)
}
