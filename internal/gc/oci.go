package gc

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// RegistryReport says what a run did with the OCI registry's rows.
type RegistryReport struct {
	Manifests        int `json:"manifests"`
	ManifestsKept    int `json:"manifests_kept"`
	ManifestsDeleted int `json:"manifests_deleted"`
	BlobLinksDeleted int `json:"blob_links_deleted"`
	TagsDeleted      int `json:"tags_deleted"`
	// Skipped says why the registry was left alone in this run (everything
	// it references kept), e.g. a manifest that could not be read or a
	// re-check that found the registry changed.
	Skipped string `json:"skipped,omitempty"`
}

// oci collects the registry (see meta.OCIGC): it keeps the rows reachable
// from the roots, deletes the others past the grace period with the
// releases among their manifests (two-phase: marked, then collected after
// the grace period), and leaves the bytes to the collect phase (releases)
// and the orphan sweep (blobs). Releases that are registry manifests are
// handled here only: the mark phase skips them (r.ociHandled).
func (r *run) oci(ctx context.Context) error {
	og := r.c.cfg.Meta
	graph, err := og.OCIGraph(ctx)
	if err != nil || len(graph.Manifests)+len(graph.Blobs) == 0 {
		return err
	}
	o := newOCIGraph(graph)
	rep := &RegistryReport{Manifests: len(graph.Manifests)}
	r.rep.Registry = rep
	skip := func(why string) error {
		rep.Skipped = why
		r.c.cfg.Log.Warn("gc: registry left alone", "why", why)
		return nil
	}
	ext := r.snap.External
	r.snap.External = nil
	vroots := r.snap.Roots(r.now) // the version roots and leases, the registry aside
	r.snap.External = ext
	cutoff := r.now.Add(-r.c.cfg.Grace)
	kept := reach{}
	var roots []meta.OCIRef
	for _, m := range graph.Manifests {
		_, rooted := vroots[hexOf(m.Digest)]
		if rooted || m.CreatedAt.After(cutoff) {
			roots = append(roots, meta.OCIRef{Repository: m.Repository, Digest: m.Digest})
		}
	}
	for _, t := range graph.Tags {
		roots = append(roots, meta.OCIRef{Repository: t.Repository, Digest: t.Digest})
	}
	for _, b := range graph.Blobs {
		if b.CreatedAt.After(cutoff) || r.snap.Leased[hexOf(b.Digest)] {
			kept[meta.OCIRef{Repository: b.Repository, Digest: b.Digest}] = true
		}
	}
	if err := r.closure(ctx, o, kept, roots); err != nil {
		return skip(err.Error())
	}
	// releases among the manifests: unreachable ones are marked, then
	// collected once marked for the grace period; until then they are roots
	rels, unmark := map[string]bool{}, []string{}
	var unreached []string
	for d, rows := range o.byDigest {
		rel := r.releases[hexOf(d)]
		if rel == nil || rel.CollectedAt != nil {
			continue
		}
		rels[rel.SHA256] = true
		if anyKept(kept, rows) {
			if rel.CollectingAt != nil {
				unmark = append(unmark, rel.SHA256)
			}
			continue
		}
		unreached = append(unreached, rel.SHA256)
	}
	sort.Strings(unreached)
	marks := map[string]time.Time{}
	for _, sha := range unreached {
		marks[sha] = r.now
		if at := r.releases[sha].CollectingAt; at != nil {
			marks[sha] = *at
		}
	}
	rootedNow := map[string]meta.Root{}
	if !r.dry && len(unreached)+len(unmark) > 0 {
		if rootedNow, err = og.MarkOCIReleases(ctx, unreached, unmark, r.now); err != nil {
			return err
		}
	}
	var due []string
	for _, sha := range unreached {
		if _, ok := rootedNow[sha]; ok || (r.c.cfg.Grace > 0 && marks[sha].After(cutoff)) {
			roots = append(roots, o.byDigest["sha256:"+sha]...)
			continue
		}
		due = append(due, sha)
	}
	if err := r.closure(ctx, o, kept, roots); err != nil {
		return skip(err.Error())
	}
	r.ociHandled = rels
	r.reportOCIReleases(o, kept, vroots, rootedNow, marks)
	return r.ociCollect(ctx, og, o, kept, due, cutoff)
}

func anyKept(kept reach, rows []meta.OCIRef) bool {
	for _, k := range rows {
		if kept[k] {
			return true
		}
	}
	return false
}

// hexOf is the hex of a sha256 digest, "" for other algorithms.
func hexOf(d string) string {
	hex, _ := strings.CutPrefix(d, "sha256:")
	if len(hex) == len(d) {
		return ""
	}
	return hex
}
