package meta

import (
	"context"
	"time"
)

// Kinds of derived artifacts (see internal/derive and docs/design.md,
// "Derived artifacts").
const (
	DerivedRootfs = "rootfs" // a rootfs release flattened from an OCI image (source: its manifest)
	DerivedErofs  = "erofs"  // an erofs image built from a rootfs release (source: that release)
)

// RootDerived: the release was derived from one that a version roots; the
// Root names that version.
const RootDerived = "derived"

// Derived records that release SHA256 was derived, as Kind, from the
// release (or OCI manifest) SourceSHA256. Both are hex sha256s.
type Derived struct {
	Kind         string    `json:"kind"`
	SourceSHA256 string    `json:"source_sha256"`
	SHA256       string    `json:"sha256"`
	CreatedAt    time.Time `json:"created_at"`
}

// Derivations is implemented by stores that record derived artifacts;
// callers type-assert.
type Derivations interface {
	// PutDerived, in one transaction, inserts rel (its kind is d.Kind's:
	// "rootfs" or "erofs"), or revives it if it was collected, and records
	// d, filling d.CreatedAt from the stored row. Recording the same
	// derivation again changes nothing. Another sha256 already recorded
	// for (kind, source): ErrConflict, unless its release was collected
	// (then d replaces it). Unknown kind, rel.SHA256 not d.SHA256,
	// malformed sha256s, a source of the wrong kind (a rootfs derives from
	// an oci release, an erofs image from a rootfs one): ErrInvalid. No
	// release row for the source: ErrNotFound.
	PutDerived(ctx context.Context, d *Derived, rel Release) error
	// GetDerived finds what kind derives from source, whose release is not
	// collected. None: ErrNotFound.
	GetDerived(ctx context.Context, kind, source string) (*Derived, error)
	// DerivedFrom lists what release sha was derived from, ordered by
	// kind then source (none: an empty list).
	DerivedFrom(ctx context.Context, sha string) ([]Derived, error)
}
