// Package audit checks the audit log's hash chain: each event's Hash is the
// sha256 of its canonical encoding (meta.EncodeEvent), which includes
// PrevHash, the Hash of the event before it. Chain checks events one at a
// time in id order and reports the first break; Walk pages through a whole
// log and also checks it against the head the log reports. The encoding
// itself lives in package meta, which the stores that compute it import.
package audit

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Break is the first event at which the chain does not hold. It is an error.
type Break struct {
	ID     int64     `json:"id"`
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Error reads "audit log broken at event 7 (activate at 2024-05-01T12:00:00Z): …".
func (b *Break) Error() string {
	return fmt.Sprintf("audit log broken at event %d (%s at %s): %s",
		b.ID, b.Action, b.At.UTC().Format(time.RFC3339Nano), b.Reason)
}

func broken(e meta.Event, format string, a ...any) *Break {
	return &Break{ID: e.ID, Action: e.Action, At: e.At, Reason: fmt.Sprintf(format, a...)}
}

// Chain checks a log one event at a time, oldest first. The zero value
// starts at the beginning of the log; events without a hash before the
// first hashed one were appended before the log was chained and are only
// counted. It is not safe for concurrent use.
type Chain struct {
	Events   int    // events checked, hashed or not
	Unhashed int    // events from before the chain started
	LastID   int64  // id of the last event checked, 0 before any
	Head     string // hash of the last event checked ("" before the chain starts)
	FirstID  int64  // id of the first hashed event, 0 before the chain starts

	last meta.Event
}

// Add checks e, the event after the last one added (by id). It returns a
// *Break when e's id does not follow, its hash does not match its contents
// (it was changed), its prev_hash is not the hash of the event before it
// (an event before it was changed, removed or inserted), or it has no hash
// although the chain has started. After a break the Chain is unchanged.
func (c *Chain) Add(e meta.Event) error {
	switch {
	case c.Events > 0 && e.ID <= c.LastID:
		return broken(e, "its id does not follow event %d", c.LastID)
	case e.Hash == "" && c.FirstID != 0:
		return broken(e, "it has no hash, but the chain starts at event %d", c.FirstID)
	case e.Hash == "" && e.PrevHash != "":
		return broken(e, "it has a prev_hash but no hash")
	case e.Hash == "":
		c.Events++
		c.Unhashed++
		c.LastID, c.last = e.ID, e
		return nil
	case meta.EventHash(e) != e.Hash:
		return broken(e, "its hash does not match its contents (the event was changed)")
	case e.PrevHash != c.Head && c.Events == 0:
		return broken(e, "its prev_hash %s is not \"\" although no event precedes it "+
			"(events before it were removed)", short(e.PrevHash))
	case e.PrevHash != c.Head:
		return broken(e, "its prev_hash %s is not the hash %s of event %d "+
			"(an event before it was changed, removed or inserted)", short(e.PrevHash), short(c.Head), c.LastID)
	}
	if c.FirstID == 0 {
		c.FirstID = e.ID
	}
	c.Events++
	c.LastID, c.Head, c.last = e.ID, e.Hash, e
	return nil
}

// Verify checks events, the whole log oldest first, and returns the Chain
// after the last one, or the first *Break.
func Verify(events []meta.Event) (*Chain, error) {
	var c Chain
	for _, e := range events {
		if err := c.Add(e); err != nil {
			return &c, err
		}
	}
	return &c, nil
}

// short abbreviates a hash for messages; "" is shown as "".
func short(h string) string {
	switch {
	case h == "":
		return `""`
	case len(h) > 12:
		return h[:12] + "…"
	}
	return h
}
