package gc

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// ociCollect deletes the rows not kept and collects the due releases whose
// manifests are all among them, in one transaction that re-checks it all
// (meta.OCIGC.CollectOCI). The collected releases' bytes are deleted by the
// collect phase; blobs left without a row by a later orphan sweep.
func (r *run) ociCollect(ctx context.Context, og meta.OCIGC, o *ociGraph, kept reach, due []string, cutoff time.Time) error {
	rep := r.rep.Registry
	c := meta.OCICollect{Graph: o.g, Cutoff: cutoff, MarkedBefore: cutoff, Now: r.now, Holder: r.holder,
		TTL: r.c.cfg.Drain + ClaimTTL}
	for _, m := range o.g.Manifests {
		if k := (meta.OCIRef{Repository: m.Repository, Digest: m.Digest}); !kept[k] {
			c.Manifests = append(c.Manifests, k)
		}
	}
	for _, b := range o.g.Blobs {
		if k := (meta.OCIRef{Repository: b.Repository, Digest: b.Digest}); !kept[k] {
			c.Blobs = append(c.Blobs, k)
		}
	}
	for _, sha := range due {
		if !anyKept(kept, o.byDigest["sha256:"+sha]) {
			c.Releases = append(c.Releases, sha)
		}
	}
	rep.ManifestsKept = len(o.g.Manifests) - len(c.Manifests)
	if len(c.Manifests)+len(c.Blobs) == 0 {
		return nil
	}
	if r.dry {
		rep.ManifestsDeleted, rep.BlobLinksDeleted = len(c.Manifests), len(c.Blobs)
		for _, sha := range c.Releases {
			rel := r.releases[sha]
			r.rep.Collected = append(r.rep.Collected, Collected{SHA256: sha, Kind: rel.Kind,
				SizeBytes: rel.SizeBytes, Versions: r.refs(sha), BytesFreed: rel.SizeBytes})
		}
		r.dropExternal(o, kept)
		return nil
	}
	r.ociDeadline = time.Now().Add(r.c.cfg.Drain + ClaimTTL - claimMargin)
	res, err := og.CollectOCI(ctx, c)
	if err != nil {
		return err
	}
	if res.Cancelled != "" {
		rep.Skipped = "cancelled: " + res.Cancelled
		r.c.cfg.Log.Info("gc: registry collection cancelled", "why", res.Cancelled)
		return nil
	}
	rep.ManifestsDeleted, rep.BlobLinksDeleted, rep.TagsDeleted = res.Manifests, res.Blobs, res.Tags
	for _, col := range res.Collections {
		rel := r.releases[col.SHA256]
		out := &Collected{SHA256: col.SHA256, Kind: rel.Kind, SizeBytes: rel.SizeBytes, Versions: []VersionRef{}}
		for _, v := range col.Versions {
			out.Versions = append(out.Versions, VersionRef{v.DeploymentID, v.ID, v.VersionNumber})
		}
		r.ociDone = append(r.ociDone, out)
	}
	r.dropExternal(o, kept)
	return nil
}

// dropExternal makes the snapshot's registry references the kept rows, so
// that the orphan sweep sees the bytes of the deleted ones.
func (r *run) dropExternal(o *ociGraph, kept reach) {
	ext := map[string]bool{}
	for k := range kept {
		if hex := hexOf(k.Digest); hex != "" {
			ext[hex] = true
		}
	}
	r.snap.External = ext
}

// reportOCIReleases reports the releases that are registry manifests: kept
// (by their version root, else by the registry) or marked.
func (r *run) reportOCIReleases(o *ociGraph, kept reach, vroots, rootedNow map[string]meta.Root, marks map[string]time.Time) {
	for sha := range r.ociHandled {
		rows := o.byDigest["sha256:"+sha]
		root, ok := vroots[sha]
		if !ok {
			root, ok = rootedNow[sha]
		}
		switch {
		case ok:
			r.rep.Kept = append(r.rep.Kept, Kept{sha, root})
		case anyKept(kept, rows) && marks[sha].IsZero():
			r.rep.Kept = append(r.rep.Kept, Kept{sha, meta.Root{Reason: meta.RootRegistry}})
		case r.c.cfg.Grace > 0 && marks[sha].After(r.now.Add(-r.c.cfg.Grace)):
			r.marked(sha, marks[sha])
		}
	}
}
