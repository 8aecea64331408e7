package gc

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// deleteBlob deletes the blob of release sha, on which this run holds a
// deletion claim, unless the claim may have expired by then (deadline, real
// time). It returns the bytes freed and whether the blob is gone; what is
// not deleted is logged and left to a later orphan sweep.
func (r *run) deleteBlob(ctx context.Context, sha string, deadline time.Time) (int64, bool) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if ctx.Err() != nil {
		return 0, false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, sha)
	var size int64
	if info, err := r.c.cfg.Blobs.Stat(ctx, d); err == nil {
		size = info.Size
	}
	err := r.c.cfg.Blobs.Delete(ctx, d)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return 0, true
	case err != nil:
		r.c.cfg.Log.Error("gc: deleting a collected release", "sha256", sha, "err", err)
		return 0, false
	}
	r.deleted[sha] = true
	return size, true
}

// orphans deletes blobs with no live release that were seen as orphans for
// longer than the grace period. Only sha256 blobs are considered; those the
// registry references, leased or claimed are not orphans. A store with
// copies in several regions also lists the copies its primary does not hold
// (Config.Strays).
func (r *run) orphans(ctx context.Context) error {
	type cand struct {
		sha, reason string
		size        int64
	}
	var cands []cand
	listed := map[digest.Digest]bool{} // by List, for ListStrays
	consider := func(info blob.Info) error {
		listed[info.Digest] = true
		if info.Digest.Algorithm() != digest.SHA256 {
			return nil
		}
		sha := info.Digest.Encoded()
		reason := "no-release"
		if rel := r.releases[sha]; rel != nil {
			if rel.CollectedAt == nil {
				return nil
			}
			reason = "collected-release"
		}
		if r.deleted[sha] || r.snap.Leased[sha] || r.snap.Claimed[sha] || r.snap.External[sha] {
			return nil
		}
		cands = append(cands, cand{sha, reason, info.Size})
		return nil
	}
	if err := r.c.cfg.Blobs.List(ctx, consider); err != nil {
		return err
	}
	if sl := r.c.cfg.Strays; sl != nil {
		known := func(d digest.Digest) bool { return listed[d] }
		if err := sl.ListStrays(ctx, known, consider); err != nil {
			return err
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].sha < cands[j].sha })
	digests := make([]string, len(cands))
	for i, c := range cands {
		digests[i] = "sha256:" + c.sha
	}
	seen := r.snap.Orphans
	var err error
	if !r.dry {
		if seen, err = r.c.g.NoteOrphans(ctx, digests, r.now); err != nil {
			return err
		}
	}
	cutoff := r.now.Add(-r.c.cfg.Grace)
	for i, c := range cands {
		first, ok := seen[digests[i]]
		if r.c.cfg.Grace > 0 && (!ok || first.After(cutoff)) {
			continue
		}
		if !r.dry {
			deadline := time.Now().Add(ClaimTTL - claimMargin)
			claimed, err := r.c.g.ClaimOrphan(ctx, c.sha, r.holder, r.now, ClaimTTL)
			if err != nil {
				return err
			}
			if !claimed {
				continue
			}
			size, done := r.deleteBlob(ctx, c.sha, deadline)
			if size > 0 { // a stray copy has no size to Stat: keep the listed one
				c.size = size
			}
			if err := r.c.g.DropClaims(context.WithoutCancel(ctx), r.holder, c.sha); err != nil {
				return err
			}
			if !done {
				continue
			}
		}
		r.rep.Orphans = append(r.rep.Orphans, Orphan{Digest: digests[i], SizeBytes: c.size, Reason: c.reason})
	}
	return nil
}
