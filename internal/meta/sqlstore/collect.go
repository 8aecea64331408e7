package sqlstore

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// MarkCollected records that the release bytes of version versionID were
// collected at at: the version keeps its row and hashes but gets status
// "collected" and collected_at, in one transaction (holding the deployment's
// row lock, so no activation or pin can slip in) with a "collect" event.
// Marking a collected version again changes nothing. The active version or a
// version a domain is pinned to: meta.ErrInvalid (they are never collected).
// Unknown version: meta.ErrNotFound. The release row is left alone: whether
// its bytes are gone is the collector's business.
//
// It implements metatest.Collector.
func (s *Store) MarkCollected(ctx context.Context, versionID string, at time.Time) error {
	err := s.update(ctx, func(tx *wtx) error {
		v, err := s.versionByID(ctx, tx, versionID)
		if err != nil {
			return err
		}
		if _, err := s.lockDeployment(ctx, tx, v.DeploymentID); err != nil {
			return err
		}
		if v, err = s.versionByID(ctx, tx, versionID); err != nil { // as of the lock
			return err
		}
		if v.CollectedAt != nil {
			return nil
		}
		if v.Status == meta.StatusActive {
			return invalid("version %s is active", v.ID)
		}
		var pins int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM domains WHERE version_id = ?`), v.ID).
			Scan(&pins); err != nil {
			return err
		}
		if pins > 0 {
			return invalid("version %s is pinned by %d domain(s)", v.ID, pins)
		}
		at := fromNanos(at.UnixNano())
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET status = ?, collected_at = ? WHERE id = ?`),
			meta.StatusCollected, at.UnixNano(), v.ID); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{
			At: s.stamp(), Actor: "gc", Action: meta.ActionCollect, DeploymentID: v.DeploymentID,
			VersionID: v.ID, ReleaseSHA256: v.ArtifactSHA256,
		}, map[string]any{"version_number": v.VersionNumber, "collected_at": at})
	})
	return s.mapErr("mark version "+quote(versionID)+" collected", err)
}
