package gc

import (
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Report says what one run did (or, in a dry run, would do).
type Report struct {
	DryRun       bool      `json:"dry_run"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	GraceSeconds float64   `json:"grace_seconds"`
	// Collected: releases collected now (dry run: that would be), with the
	// versions that became "collected" and the bytes deleted.
	Collected []Collected `json:"collected"`
	// Marked: unrooted releases waiting for the grace period to pass.
	Marked []Marked `json:"marked"`
	// Cancelled: marked releases a root reached again; the mark is cleared.
	Cancelled []Kept `json:"cancelled"`
	// Kept: every live release and the strongest root that holds it.
	Kept    []Kept   `json:"kept"`
	Orphans []Orphan `json:"orphans_deleted"`
	// Registry: what the run did with the OCI registry (nil: no registry).
	Registry *RegistryReport `json:"registry,omitempty"`
	Totals   Totals          `json:"totals"`
}

// VersionRef names a version.
type VersionRef struct {
	DeploymentID  string `json:"deployment_id"`
	VersionID     string `json:"version_id"`
	VersionNumber int64  `json:"version_number"`
}

// Collected is a collected release.
type Collected struct {
	SHA256    string       `json:"sha256"`
	Kind      string       `json:"kind"`
	SizeBytes int64        `json:"size_bytes"`
	Versions  []VersionRef `json:"versions"`
	// BytesFreed is what the deletion freed: 0 when the bytes were gone already.
	BytesFreed int64 `json:"bytes_freed"`
	// Deleted is false when deleting the bytes failed (the orphan sweep retries).
	Deleted bool `json:"deleted"`
}

// Marked is a release marked collecting.
type Marked struct {
	SHA256        string       `json:"sha256"`
	SizeBytes     int64        `json:"size_bytes"`
	MarkedAt      time.Time    `json:"marked_at"`
	CollectableAt time.Time    `json:"collectable_at"`
	Versions      []VersionRef `json:"versions"`
}

// Kept is a release a root holds.
type Kept struct {
	SHA256 string `json:"sha256"`
	meta.Root
}

// Orphan is a deleted blob without a live release.
type Orphan struct {
	Digest    string `json:"digest"`
	SizeBytes int64  `json:"size_bytes"`
	Reason    string `json:"reason"` // "no-release" or "collected-release"
}

// Totals sum up a report.
type Totals struct {
	ReleasesCollected int            `json:"releases_collected"`
	VersionsCollected int            `json:"versions_collected"`
	BytesFreed        int64          `json:"bytes_freed"`
	ReleasesMarked    int            `json:"releases_marked"`
	ReleasesCancelled int            `json:"releases_cancelled"`
	ReleasesKept      int            `json:"releases_kept"`
	KeptBy            map[string]int `json:"kept_by"` // root → releases
	OrphansDeleted    int            `json:"orphans_deleted"`
	OrphanBytesFreed  int64          `json:"orphan_bytes_freed"`
}

// total fills r.Totals from the lists.
func (r *Report) total() {
	t := Totals{KeptBy: map[string]int{}}
	for _, c := range r.Collected {
		t.ReleasesCollected++
		t.VersionsCollected += len(c.Versions)
		t.BytesFreed += c.BytesFreed
	}
	t.ReleasesMarked = len(r.Marked)
	t.ReleasesCancelled = len(r.Cancelled)
	t.ReleasesKept = len(r.Kept)
	for _, k := range r.Kept {
		t.KeptBy[k.Reason]++
	}
	for _, o := range r.Orphans {
		t.OrphansDeleted++
		t.OrphanBytesFreed += o.SizeBytes
	}
	r.Totals = t
}

func newReport(dry bool, now time.Time, grace time.Duration) *Report {
	return &Report{DryRun: dry, StartedAt: now, GraceSeconds: grace.Seconds(),
		Collected: []Collected{}, Marked: []Marked{}, Cancelled: []Kept{}, Kept: []Kept{}, Orphans: []Orphan{}}
}
