package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/cairnhq/cairn/internal/meta"
)

// ociDelete deletes the rows c names inside tx and collects each release of
// c.Releases the registry no longer references. A release not marked for
// the grace period, or rooted by its versions or a lease, cancels it all.
func (s *Store) ociDelete(ctx context.Context, tx *wtx, c meta.OCICollect, out *meta.OCICollection) error {
	for _, sha := range c.Releases {
		var collecting *int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT collecting_at FROM releases WHERE sha256 = ? AND collected_at IS NULL`),
			sha).Scan(&collecting)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		if collecting == nil || *collecting > c.MarkedBefore.UnixNano() {
			return &ociCancel{"release " + sha + " is not marked for the grace period"}
		}
	}
	for _, m := range c.Manifests {
		tag, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND digest = ?`), m.Repository, m.Digest)
		if err != nil {
			return err
		}
		out.Tags += int(affected(tag))
		if tag, err = tx.ExecContext(ctx, s.q(`DELETE FROM oci_manifests WHERE repository = ? AND digest = ?`),
			m.Repository, m.Digest); err != nil {
			return err
		}
		out.Manifests += int(affected(tag))
	}
	for _, b := range c.Blobs {
		tag, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_blobs WHERE repository = ? AND digest = ?`), b.Repository, b.Digest)
		if err != nil {
			return err
		}
		out.Blobs += int(affected(tag))
	}
	f := s.rootFinder(tx, c.Now)
	for _, sha := range c.Releases {
		r, err := f.rootOf(ctx, sha)
		switch {
		case err != nil:
			return err
		case r != nil && r.Reason != meta.RootRegistry:
			return &ociCancel{"release " + sha + " has a root: " + r.Reason}
		case r != nil: // another repository holds the manifest: the release stays
			continue
		}
		col, err := s.collect(ctx, f, sha, c.MarkedBefore, c.Holder, c.Now.Add(c.TTL))
		if err != nil {
			return err
		}
		if col != nil && col.Root == nil {
			out.Collections = append(out.Collections, *col)
		}
	}
	return nil
}
