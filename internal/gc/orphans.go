package gc

import (
	"context"
	"errors"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// delete deletes the blob of release sha, which this run holds a deletion
// claim on, and drops the claim. It returns the bytes freed and whether the
// blob is gone; failures are logged and left to the orphan sweep.
func (r *run) delete(ctx context.Context, sha string) (int64, bool) {
	ctx, cancel := context.WithTimeout(ctx, deleteTime)
	defer cancel()
	d := digest.NewDigestFromEncoded(digest.SHA256, sha)
	var size int64
	if info, err := r.c.cfg.Blobs.Stat(ctx, d); err == nil {
		size = info.Size
	}
	err := r.c.cfg.Blobs.Delete(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		size, err = 0, nil
	}
	if err != nil {
		r.c.cfg.Log.Error("gc: deleting a collected release", "sha256", sha, "err", err)
		size = 0
	} else {
		r.deleted[sha] = true
	}
	if derr := r.c.g.DropClaim(context.WithoutCancel(ctx), sha, r.c.holder); derr != nil {
		r.c.cfg.Log.Error("gc: dropping a deletion claim", "sha256", sha, "err", derr)
	}
	return size, err == nil
}

// orphans deletes blobs with no live release that were seen as orphans for
// longer than the grace period. Only sha256 blobs are considered; those the
// registry references, leased or claimed are not orphans.
func (r *run) orphans(ctx context.Context) error {
	type cand struct {
		sha, reason string
		size        int64
	}
	var cands []cand
	err := r.c.cfg.Blobs.List(ctx, func(info blob.Info) error {
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
	})
	if err != nil {
		return err
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].sha < cands[j].sha })
	digests := make([]string, len(cands))
	for i, c := range cands {
		digests[i] = "sha256:" + c.sha
	}
	seen := r.snap.Orphans
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
			claimed, err := r.c.g.ClaimOrphan(ctx, c.sha, r.c.holder, r.now, ClaimTTL)
			if err != nil {
				return err
			}
			if !claimed {
				continue
			}
			var done bool
			if c.size, done = r.delete(ctx, c.sha); !done {
				continue
			}
		}
		r.rep.Orphans = append(r.rep.Orphans, Orphan{Digest: digests[i], SizeBytes: c.size, Reason: c.reason})
	}
	return nil
}
