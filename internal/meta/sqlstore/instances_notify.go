package sqlstore

import (
	"context"

	"github.com/cairnhq/cairn/internal/meta"
)

// announceInstances marks tx as announcing a change the router serves by:
// an instance's state or address, an instance removed, a host lost or back
// (depID "" when it is not one deployment's). Watchers hear of it on
// commit, as of a pointer change (PostgreSQL: pg_notify, folded per
// transaction).
func (s *Store) announceInstances(ctx context.Context, tx *wtx, depID string) error {
	tx.announced = true
	if s.h.Announce == nil {
		return nil
	}
	return s.h.Announce(ctx, tx.Tx, meta.Event{DeploymentID: depID})
}
