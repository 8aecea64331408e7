package meta

import (
	"context"
	"time"
)

// Garbage collection of the OCI registry (see internal/gc and docs/design.md).
//
// The registry's rows are kept while reachable from a root: the manifest of
// a rooted version (GCSnapshot.Roots without the registry), a manifest a tag
// points at, or a manifest or blob link stored within the grace period.
// From a kept manifest, its config, layers, index children (recursively) and
// referrers (manifests whose subject it is, recursively) are kept. The rest
// is deleted by OCIGC.CollectOCI; a manifest that is a release is collected
// with it (its versions become "collected"), and the bytes left without a
// row are deleted by the collector (release bytes after the collection,
// blobs through the orphan sweep).

// OCIGCManifest is a manifest row as the collector sees it.
type OCIGCManifest struct {
	Repository string
	Digest     string
	MediaType  string
	Subject    string // "" when none
	CreatedAt  time.Time
}

// OCIGCBlob is a blob link as the collector sees it.
type OCIGCBlob struct {
	Repository string
	Digest     string
	Size       int64
	CreatedAt  time.Time
}

// OCIGCTag is a tag as the collector sees it.
type OCIGCTag struct {
	Repository string
	Tag        string
	Digest     string
}

// OCIGraph is one consistent read of the registry's rows.
type OCIGraph struct {
	Manifests []OCIGCManifest
	Blobs     []OCIGCBlob
	Tags      []OCIGCTag
}

// OCIRef names a manifest or blob link of a repository.
type OCIRef struct {
	Repository string
	Digest     string
}

// OCICollect is what CollectOCI deletes, given the graph it was decided on.
type OCICollect struct {
	Graph     *OCIGraph // as read by OCIGraph; any change to its manifests or tags cancels
	Manifests []OCIRef
	Blobs     []OCIRef
	// Cutoff: a row created after it (within the grace period) cancels.
	Cutoff time.Time
	// Releases are the sha256s among Manifests that are releases: each must
	// be marked at or before MarkedBefore and have no root (the registry
	// aside), else the collection is cancelled. They are collected as
	// GC.CollectReleases does (versions, events, deletion claim for holder).
	Releases     []string
	MarkedBefore time.Time
	Now          time.Time
	Holder       string
	TTL          time.Duration
}

// OCICollection is what CollectOCI did.
type OCICollection struct {
	// Cancelled says why nothing was deleted ("" when the rows were deleted).
	Cancelled   string
	Manifests   int          // manifest rows deleted
	Blobs       int          // blob links deleted
	Tags        int          // tags deleted with their manifests
	Collections []Collection // the releases collected
}

// OCIGC is the collection of the OCI registry; part of meta.Full, declared
// by gc.Store.
type OCIGC interface {
	// OCIGraph reads every manifest, blob link and tag in one read transaction.
	OCIGraph(ctx context.Context) (*OCIGraph, error)
	// MarkOCIReleases marks each release of shas not collected and with no
	// root, the registry aside, collecting at now (a mark already set stays),
	// and clears the mark of the others, whose roots it returns, and of each
	// release of unmark (kept by the registry); one transaction.
	MarkOCIReleases(ctx context.Context, shas, unmark []string, now time.Time) (map[string]Root, error)
	// CollectOCI re-checks c in one transaction and, unless the registry
	// changed since c.Graph or a release or row is rooted again, deletes the
	// manifests (and their tags) and blob links and collects c.Releases.
	CollectOCI(ctx context.Context, c OCICollect) (*OCICollection, error)
}

// SameOCIGraph reports whether b has the manifests (with their creation
// times) and the tags of a: what CollectOCI re-checks.
func SameOCIGraph(a, b *OCIGraph) bool {
	if a == nil || len(a.Manifests) != len(b.Manifests) || len(a.Tags) != len(b.Tags) {
		return false
	}
	ms := map[OCIRef]int64{}
	for _, m := range a.Manifests {
		ms[OCIRef{Repository: m.Repository, Digest: m.Digest}] = m.CreatedAt.UnixNano()
	}
	for _, m := range b.Manifests {
		if at, ok := ms[OCIRef{Repository: m.Repository, Digest: m.Digest}]; !ok || at != m.CreatedAt.UnixNano() {
			return false
		}
	}
	ts := map[OCIGCTag]bool{}
	for _, t := range a.Tags {
		ts[t] = true
	}
	for _, t := range b.Tags {
		if !ts[t] {
			return false
		}
	}
	return true
}
