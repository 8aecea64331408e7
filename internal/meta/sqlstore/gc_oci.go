package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// OCIGraph reads the registry's manifests, blob links and tags in one
// read-only snapshot transaction.
func (s *Store) OCIGraph(ctx context.Context) (*meta.OCIGraph, error) {
	g := &meta.OCIGraph{}
	if err := s.snapshotTx(ctx, func(tx Querier) error { return s.ociGraph(ctx, tx, g) }); err != nil {
		return nil, s.mapErr("oci graph", err)
	}
	return g, nil
}

func (s *Store) ociGraph(ctx context.Context, q Querier, g *meta.OCIGraph) error {
	var (
		m  meta.OCIGCManifest
		b  meta.OCIGCBlob
		t  meta.OCIGCTag
		at int64
	)
	rows, err := q.QueryContext(ctx, `SELECT repository, digest, media_type, subject, created_at FROM oci_manifests`)
	if err != nil {
		return err
	}
	if _, err := forEachRow(rows, []any{&m.Repository, &m.Digest, &m.MediaType, &m.Subject, &at}, func() error {
		m.CreatedAt = fromNanos(at)
		g.Manifests = append(g.Manifests, m)
		return nil
	}); err != nil {
		return err
	}
	if rows, err = q.QueryContext(ctx, `SELECT repository, digest, size, created_at FROM oci_blobs`); err != nil {
		return err
	}
	if _, err := forEachRow(rows, []any{&b.Repository, &b.Digest, &b.Size, &at}, func() error {
		b.CreatedAt = fromNanos(at)
		g.Blobs = append(g.Blobs, b)
		return nil
	}); err != nil {
		return err
	}
	if rows, err = q.QueryContext(ctx, `SELECT repository, tag, digest FROM oci_tags`); err != nil {
		return err
	}
	_, err = forEachRow(rows, []any{&t.Repository, &t.Tag, &t.Digest}, func() error {
		g.Tags = append(g.Tags, t)
		return nil
	})
	return err
}

// MarkOCIReleases marks the unrooted releases of shas and unmarks the
// rooted ones and those of unmark: see meta.OCIGC. A release the registry
// still references counts as unrooted here (rootOf answers "registry"
// before looking at versions): CollectOCI re-checks its versions' roots
// once the rows are gone, so an early mark only waits longer.
func (s *Store) MarkOCIReleases(ctx context.Context, shas, unmark []string, now time.Time) (map[string]meta.Root, error) {
	kept := map[string]meta.Root{}
	err := s.update(ctx, func(tx *wtx) error {
		clear(kept)
		if err := s.lockRoots(ctx, tx, append(append([]string{}, shas...), unmark...)); err != nil {
			return err
		}
		f := s.rootFinder(tx, now)
		clearing := append([]string{}, unmark...)
		for _, sha := range shas {
			r, err := f.rootOf(ctx, sha)
			if err != nil {
				return err
			}
			if r != nil && r.Reason != meta.RootRegistry {
				kept[sha] = *r
				clearing = append(clearing, sha)
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = ?
				WHERE sha256 = ? AND collected_at IS NULL AND collecting_at IS NULL`), now.UnixNano(), sha); err != nil {
				return err
			}
		}
		for _, sha := range clearing {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collecting_at = NULL
				WHERE sha256 = ? AND collected_at IS NULL`), sha); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("mark oci releases collecting", err)
	}
	return kept, nil
}

// ociCancel rolls a CollectOCI transaction back, saying why.
type ociCancel struct{ why string }

func (c *ociCancel) Error() string { return "oci collection cancelled: " + c.why }

// CollectOCI re-checks and deletes what c names: see meta.OCIGC. It locks
// the registry's tables against writes (Hooks.LockRegistry; pushes wait for
// it) and the lockRoots of c.Releases, so its re-checks stand until it
// commits.
func (s *Store) CollectOCI(ctx context.Context, c meta.OCICollect) (*meta.OCICollection, error) {
	var out *meta.OCICollection
	err := s.update(ctx, func(tx *wtx) error {
		out = &meta.OCICollection{}
		if s.h.LockRegistry != nil {
			if err := s.h.LockRegistry(ctx, tx.Tx); err != nil {
				return err
			}
		}
		// The sha256 locks of everything to delete: a push's lease on one
		// (HoldRelease takes the same lock) either commits before, and the
		// re-check below sees it, or waits until this commits, and the push
		// then finds the link gone. Without them a push could take its
		// lease after the re-check, find the link still there, and commit
		// a manifest that refers to a blob this deletes.
		if err := s.lockSHAs(ctx, tx, append(ociSHAs(c), c.Releases...)); err != nil {
			return err
		}
		if len(c.Releases) > 0 {
			if err := s.lockRoots(ctx, tx, c.Releases); err != nil {
				return err
			}
		}
		if why, err := s.ociRecheck(ctx, tx, c); err != nil || why != "" {
			if why != "" {
				err = &ociCancel{why}
			}
			return err
		}
		return s.ociDelete(ctx, tx, c, out)
	})
	if cancel := (*ociCancel)(nil); errors.As(err, &cancel) {
		return &meta.OCICollection{Cancelled: cancel.why}, nil
	}
	if err != nil {
		return nil, s.mapErr("collect oci", err)
	}
	return out, nil
}

// ociSHAs lists the sha256 (hex) of the manifests and blobs c deletes
// (other algorithms are neither leased nor locked).
func ociSHAs(c meta.OCICollect) []string {
	var shas []string
	for _, r := range append(append([]meta.OCIRef{}, c.Manifests...), c.Blobs...) {
		if hex, ok := strings.CutPrefix(r.Digest, "sha256:"); ok {
			shas = append(shas, hex)
		}
	}
	return shas
}

// ociRecheck returns why c must not be carried out now ("" when it may).
func (s *Store) ociRecheck(ctx context.Context, tx *wtx, c meta.OCICollect) (string, error) {
	now := &meta.OCIGraph{}
	if err := s.ociGraph(ctx, tx, now); err != nil {
		return "", err
	}
	if !meta.SameOCIGraph(c.Graph, now) {
		return "the registry changed", nil
	}
	for _, b := range c.Blobs {
		var again bool
		if err := tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM oci_blobs
			WHERE repository = ? AND digest = ? AND created_at > ?)`), b.Repository, b.Digest, c.Cutoff.UnixNano()).Scan(&again); err != nil {
			return "", err
		}
		if again {
			return "blob " + b.Digest + " was linked again", nil
		}
	}
	for _, hex := range ociSHAs(c) {
		var leased bool
		if err := tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM release_leases
			WHERE sha256 = ? AND purpose = ? AND expires_at > ?)`), hex, purposeUse, c.Now.UnixNano()).Scan(&leased); err != nil {
			return "", err
		}
		if leased {
			return "sha256:" + hex + " is leased", nil
		}
	}
	return "", nil
}
