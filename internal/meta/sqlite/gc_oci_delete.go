package sqlite

import (
	"context"
	"database/sql"

	"github.com/cairnhq/cairn/internal/meta"
)

// ociDelete deletes the rows c names inside tx, then collects each release
// of c.Releases the registry no longer references.
func (s *Store) ociDelete(ctx context.Context, tx *sql.Tx, c meta.OCICollect, out *meta.OCICollection) error {
	for _, m := range c.Manifests {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_tags WHERE repository = ? AND digest = ?`), m.Repository, m.Digest)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Tags += int(n)
		// subjects and children are not foreign keys: referrers stay valid rows
		if res, err = tx.ExecContext(ctx, s.q(`DELETE FROM oci_manifests WHERE repository = ? AND digest = ?`),
			m.Repository, m.Digest); err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		out.Manifests += int(n)
	}
	for _, b := range c.Blobs {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM oci_blobs WHERE repository = ? AND digest = ?`), b.Repository, b.Digest)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Blobs += int(n)
	}
	f := s.rootFinder(tx, c.Now) // the registry counts again: another repository may hold the digest
	for _, sha := range c.Releases {
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
