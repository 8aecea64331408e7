package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

var _ meta.OCIGC = (*Store)(nil)

// OCIGraph reads the registry's manifests, blob links and tags in one read
// transaction; without the registry's tables the graph is empty.
func (s *Store) OCIGraph(ctx context.Context) (*meta.OCIGraph, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, mapErr("oci graph", err)
	}
	defer tx.Rollback()
	g := &meta.OCIGraph{}
	if err := s.ociGraph(ctx, tx, g); err != nil {
		return nil, mapErr("oci graph", err)
	}
	return g, nil
}

func (s *Store) ociGraph(ctx context.Context, q querier, g *meta.OCIGraph) error {
	if ok, err := s.registryTables(ctx, q); err != nil || !ok {
		return err
	}
	rows, err := q.QueryContext(ctx, `SELECT repository, digest, media_type, subject, created_at FROM oci_manifests`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			m  meta.OCIGCManifest
			at int64
		)
		if err := rows.Scan(&m.Repository, &m.Digest, &m.MediaType, &m.Subject, &at); err != nil {
			return err
		}
		m.CreatedAt = fromNanos(at)
		g.Manifests = append(g.Manifests, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	brows, err := q.QueryContext(ctx, `SELECT repository, digest, size, created_at FROM oci_blobs`)
	if err != nil {
		return err
	}
	defer brows.Close()
	for brows.Next() {
		var (
			b  meta.OCIGCBlob
			at int64
		)
		if err := brows.Scan(&b.Repository, &b.Digest, &b.Size, &at); err != nil {
			return err
		}
		b.CreatedAt = fromNanos(at)
		g.Blobs = append(g.Blobs, b)
	}
	if err := brows.Err(); err != nil {
		return err
	}
	trows, err := q.QueryContext(ctx, `SELECT repository, tag, digest FROM oci_tags`)
	if err != nil {
		return err
	}
	defer trows.Close()
	for trows.Next() {
		var t meta.OCIGCTag
		if err := trows.Scan(&t.Repository, &t.Tag, &t.Digest); err != nil {
			return err
		}
		g.Tags = append(g.Tags, t)
	}
	return trows.Err()
}

// MarkOCIReleases marks the unrooted releases of shas (the registry aside)
// and unmarks the rooted ones and those of unmark: see meta.OCIGC.
func (s *Store) MarkOCIReleases(ctx context.Context, shas, unmark []string, now time.Time) (map[string]meta.Root, error) {
	kept := map[string]meta.Root{}
	err := s.update(ctx, func(tx *sql.Tx) error {
		clear(kept)
		f := s.ociRootFinder(tx, now)
		for _, sha := range shas {
			r, err := f.rootOf(ctx, sha)
			if err != nil {
				return err
			}
			if r != nil {
				kept[sha] = *r
				unmark = append(unmark, sha)
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = ?
				WHERE sha256 = ? AND collected_at IS NULL AND collecting_at IS NULL`), now.UnixNano(), sha); err != nil {
				return err
			}
		}
		for _, sha := range unmark {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = NULL
				WHERE sha256 = ? AND collected_at IS NULL`), sha); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("mark oci releases collecting", err)
	}
	return kept, nil
}

// ociRootFinder is a rootFinder that leaves the registry aside: the
// collector decides what the registry keeps.
func (s *Store) ociRootFinder(tx *sql.Tx, now time.Time) *rootFinder {
	f := s.rootFinder(tx, now)
	no := false
	f.registry = &no
	return f
}

// CollectOCI re-checks and deletes what c names: see meta.OCIGC.
func (s *Store) CollectOCI(ctx context.Context, c meta.OCICollect) (*meta.OCICollection, error) {
	var out *meta.OCICollection
	err := s.update(ctx, func(tx *sql.Tx) error {
		out = &meta.OCICollection{}
		why, err := s.ociRecheck(ctx, tx, c)
		if err != nil || why != "" {
			out.Cancelled = why
			return err
		}
		return s.ociDelete(ctx, tx, c, out)
	})
	if err != nil {
		return nil, mapErr("collect oci", err)
	}
	if len(out.Collections) > 0 {
		s.notify()
	}
	return out, nil
}

// ociRecheck returns why c must not be carried out now ("" when it may).
func (s *Store) ociRecheck(ctx context.Context, tx *sql.Tx, c meta.OCICollect) (string, error) {
	now := &meta.OCIGraph{}
	if err := s.ociGraph(ctx, tx, now); err != nil {
		return "", err
	}
	if !meta.SameOCIGraph(c.Graph, now) {
		return "the registry changed", nil
	}
	cutoff := c.Cutoff.UnixNano()
	for _, b := range c.Blobs {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM oci_blobs
			WHERE repository = ? AND digest = ? AND created_at > ?`), b.Repository, b.Digest, cutoff).Scan(&n); err != nil {
			return "", err
		}
		if n > 0 {
			return "blob " + b.Digest + " was linked again", nil
		}
	}
	for _, r := range append(append([]meta.OCIRef{}, c.Manifests...), c.Blobs...) {
		hex, ok := strings.CutPrefix(r.Digest, "sha256:")
		if !ok {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM release_leases
			WHERE sha256 = ? AND purpose = ? AND expires_at > ?`), hex, purposeUse, c.Now.UnixNano()).Scan(&n); err != nil {
			return "", err
		}
		if n > 0 {
			return r.Digest + " is leased", nil
		}
	}
	f := s.ociRootFinder(tx, c.Now)
	for _, sha := range c.Releases {
		var collecting sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT collecting_at FROM releases
			WHERE sha256 = ? AND collected_at IS NULL`), sha).Scan(&collecting); err == sql.ErrNoRows {
			continue
		} else if err != nil {
			return "", err
		}
		if !collecting.Valid || collecting.Int64 > c.MarkedBefore.UnixNano() {
			return "release " + sha + " is not marked for the grace period", nil
		}
		if r, err := f.rootOf(ctx, sha); err != nil || r != nil {
			if r != nil {
				return "release " + sha + " has a root: " + r.Reason, err
			}
			return "", err
		}
	}
	return "", nil
}
