package gc

import (
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Plan is what one collection does with the releases of a snapshot,
// decided by plan from the snapshot alone: no database, no clock but now.
// Each live release not skipped is in exactly one list, in snapshot order.
type Plan struct {
	Kept    []Kept   // rooted and not marked: nothing to do
	Unmark  []string // marked, but a root reaches it again: clear the mark
	Mark    []string // unrooted and not marked: mark it (its grace starts)
	Waiting []string // marked, grace not over: wait
	Due     []string // marked and past the grace: collect
	// Roots are the snapshot's roots at now (meta.GCSnapshot.Roots).
	Roots map[string]meta.Root
}

// plan sorts every release of snap that is not collected and not in skip
// (the registry's own, handled first) by its roots at now and its mark
// against grace.
func plan(snap *meta.GCSnapshot, now time.Time, grace time.Duration, skip map[string]bool) Plan {
	roots := snap.Roots(now)
	cutoff := now.Add(-grace)
	p := Plan{Roots: roots}
	for _, rel := range snap.Releases {
		switch root, ok := roots[rel.SHA256]; {
		case rel.CollectedAt != nil, skip[rel.SHA256]:
		case ok && rel.CollectingAt != nil:
			p.Unmark = append(p.Unmark, rel.SHA256)
		case ok:
			p.Kept = append(p.Kept, Kept{rel.SHA256, root})
		case rel.CollectingAt == nil:
			p.Mark = append(p.Mark, rel.SHA256)
		case rel.CollectingAt.After(cutoff):
			p.Waiting = append(p.Waiting, rel.SHA256)
		default:
			p.Due = append(p.Due, rel.SHA256)
		}
	}
	return p
}
