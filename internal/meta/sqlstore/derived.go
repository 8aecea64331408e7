package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/meta"
)

// Derived artifacts (meta.Derivations; migration 0013_derived).

// derivedFrom is the release kind each derived kind is made from.
var derivedFrom = map[string]string{meta.DerivedRootfs: meta.KindOCI, meta.DerivedErofs: meta.KindRootfs}

// PutDerived records d with its release rel: see meta.Derivations. It takes
// the sha256 locks of both, so a collection deciding about either waits.
func (s *Store) PutDerived(ctx context.Context, d *meta.Derived, rel meta.Release) error {
	if d.Kind != meta.DerivedRootfs && d.Kind != meta.DerivedErofs {
		return invalid("unknown derived kind %q", d.Kind)
	}
	if !isSHA256(d.SHA256) || !isSHA256(d.SourceSHA256) || rel.SHA256 != d.SHA256 ||
		(rel.TreeSHA256 != "" && !isSHA256(rel.TreeSHA256)) {
		return invalid("derived %s of %q: malformed sha256 %q", d.Kind, d.SourceSHA256, d.SHA256)
	}
	err := s.update(ctx, func(tx *wtx) error {
		if err := s.lockSHAs(ctx, tx, []string{d.SourceSHA256, d.SHA256}); err != nil {
			return err
		}
		src, err := s.releaseBySHA(ctx, tx, d.SourceSHA256)
		if err != nil {
			return err // sql.ErrNoRows: meta.ErrNotFound
		}
		if want := derivedFrom[d.Kind]; src.Kind != want {
			return invalid("a %s derives from a %s release, not %s release %s", d.Kind, want, src.Kind, d.SourceSHA256)
		}
		now := s.stamp().UnixNano()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO releases (`+releaseCols+`)
			VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (sha256) DO NOTHING`),
			rel.SHA256, d.Kind, rel.SizeBytes, rel.URI, rel.TreeSHA256, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE releases SET collected_at = NULL, collecting_at = NULL, uri = ?
			WHERE sha256 = ? AND collected_at IS NOT NULL`), rel.URI, rel.SHA256); err != nil {
			return err
		}
		// A record whose release was collected gives way: deriving again may
		// give other bytes (another mkfs.erofs, say).
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM derived WHERE kind = ? AND source_sha256 = ? AND sha256 <> ?
			AND sha256 IN (SELECT sha256 FROM releases WHERE collected_at IS NOT NULL)`),
			d.Kind, d.SourceSHA256, d.SHA256); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO derived (kind, source_sha256, sha256, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (kind, source_sha256) DO NOTHING`),
			d.Kind, d.SourceSHA256, d.SHA256, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 { // a new record, not the same one again
			if err := s.appendEvent(ctx, tx, meta.Event{
				At: fromNanos(now), Actor: "derive", Action: meta.ActionDerive, ReleaseSHA256: d.SHA256,
			}, map[string]string{"kind": d.Kind, "source_sha256": d.SourceSHA256}); err != nil {
				return err
			}
		}
		var (
			sha     string
			created int64
		)
		if err := tx.QueryRowContext(ctx, s.q(`SELECT sha256, created_at FROM derived
			WHERE kind = ? AND source_sha256 = ?`), d.Kind, d.SourceSHA256).Scan(&sha, &created); err != nil {
			return err
		}
		if sha != d.SHA256 {
			return fmt.Errorf("%w: %s of %s is recorded as %s, not %s", meta.ErrConflict, d.Kind, d.SourceSHA256, sha, d.SHA256)
		}
		d.CreatedAt = fromNanos(created)
		return nil
	})
	if errors.Is(err, meta.ErrConflict) {
		return err
	}
	return s.mapErr("put derived "+d.Kind+" of "+quote(d.SourceSHA256), err)
}

// GetDerived finds what kind derives from source: see meta.Derivations.
func (s *Store) GetDerived(ctx context.Context, kind, source string) (*meta.Derived, error) {
	return readRow(ctx, s, "get derived "+kind+" of "+quote(source), func(q Querier) (*meta.Derived, error) {
		d := meta.Derived{Kind: kind, SourceSHA256: source}
		var created int64
		err := q.QueryRowContext(ctx, s.q(`SELECT d.sha256, d.created_at FROM derived d
			JOIN releases r ON r.sha256 = d.sha256
			WHERE d.kind = ? AND d.source_sha256 = ? AND r.collected_at IS NULL`), kind, source).Scan(&d.SHA256, &created)
		d.CreatedAt = fromNanos(created)
		return &d, err
	})
}

// DerivedFrom lists what sha was derived from: see meta.Derivations.
func (s *Store) DerivedFrom(ctx context.Context, sha string) ([]meta.Derived, error) {
	var out []meta.Derived
	err := s.read(ctx, func(q Querier) error {
		var err error
		out, err = s.derivedRows(ctx, q, `WHERE sha256 = ? ORDER BY kind, source_sha256`, sha)
		return err
	})
	if err != nil {
		return nil, s.mapErr("derived from "+quote(sha), err)
	}
	return out, nil
}

func (s *Store) derivedRows(ctx context.Context, q Querier, where string, args ...any) ([]meta.Derived, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT kind, source_sha256, sha256, created_at FROM derived `+where), args...)
	if err != nil {
		return nil, err
	}
	out, err := collectRows(rows, func(r scanner) (meta.Derived, error) {
		var (
			d       meta.Derived
			created int64
		)
		err := r.Scan(&d.Kind, &d.SourceSHA256, &d.SHA256, &created)
		d.CreatedAt = fromNanos(created)
		return d, err
	})
	if out == nil {
		out = []meta.Derived{}
	}
	return out, err
}

// maxDeriveDepth bounds a chain of derivations (oci → rootfs → erofs).
const maxDeriveDepth = 4

// sources returns the derivation edges that lead to shas (their sources,
// and the sources of those), and the sources' sha256s, not those of shas.
func (s *Store) sources(ctx context.Context, q Querier, shas []string) ([]meta.Derived, []string, error) {
	var (
		edges []meta.Derived
		srcs  []string
	)
	seen := map[string]bool{}
	for _, sha := range shas {
		seen[sha] = true
	}
	next := shas
	for depth := 0; depth < maxDeriveDepth && len(next) > 0; depth++ {
		var found []string
		for _, sha := range next {
			ds, err := s.derivedRows(ctx, q, `WHERE sha256 = ?`, sha)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, nil, err
			}
			for _, d := range ds {
				edges = append(edges, d)
				if !seen[d.SourceSHA256] {
					seen[d.SourceSHA256] = true
					found = append(found, d.SourceSHA256)
					srcs = append(srcs, d.SourceSHA256)
				}
			}
		}
		next = found
	}
	return edges, srcs, nil
}
