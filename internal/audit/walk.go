package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/meta"
)

// PageSize is the page size Walk asks for: the API's largest.
const PageSize = 1000

// ErrHeadNotFound: Walk was given a head recorded earlier that no event of
// the log has as its hash, so the log before it was rewritten or cut off.
var ErrHeadNotFound = errors.New("the recorded head is not in the audit log")

// Page is one answer of a Source.
type Page struct {
	Events []meta.Event // oldest first
	Head   string       // hash of the newest event of the whole log, read before Events
	HeadID int64        // id of that event; 0 when the log is empty
}

// Source pages through a log: at most limit events with id > after.
type Source interface {
	EventPage(ctx context.Context, after int64, limit int) (*Page, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context, after int64, limit int) (*Page, error)

// EventPage calls f.
func (f SourceFunc) EventPage(ctx context.Context, after int64, limit int) (*Page, error) {
	return f(ctx, after, limit)
}

// StoreSource reads the log of a metadata store directly, as GET /v1/events
// does: the head first, then the page.
func StoreSource(s meta.Events) Source {
	return SourceFunc(func(ctx context.Context, after int64, limit int) (*Page, error) {
		p := &Page{}
		last, err := s.LastEvent(ctx)
		switch {
		case errors.Is(err, meta.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			p.Head, p.HeadID = last.Hash, last.ID
		}
		p.Events, err = s.ListEvents(ctx, meta.EventFilter{AfterID: after, Limit: limit})
		return p, err
	})
}

// Result is what Walk found in a log that holds together.
type Result struct {
	Chain
	// RecordedID is the id of the event whose hash is the recorded head
	// given to Walk (0 when none was given).
	RecordedID int64
}

// maxHeadRetries bounds the empty pages Walk accepts whose head is an event
// it has not been listed yet.
const maxHeadRetries = 3

// Walk reads the whole log from src, oldest first, one page of PageSize at
// a time (the pages are not kept), and checks its chain. Once a page comes
// back empty, the head the log reported with it must be the last event
// read, with the same hash. When recorded is not "" (a head noted earlier),
// some event must have it as its hash, else ErrHeadNotFound. A chain that
// does not hold returns a *Break; failures of src return their error.
func Walk(ctx context.Context, src Source, recorded string) (*Result, error) {
	r := &Result{}
	for retries := 0; ; {
		p, err := src.EventPage(ctx, r.LastID, PageSize)
		if err != nil {
			return r, err
		}
		for _, e := range p.Events {
			if err := r.Add(e); err != nil {
				return r, err
			}
			if recorded != "" && e.Hash == recorded && r.RecordedID == 0 {
				r.RecordedID = e.ID
			}
		}
		if len(p.Events) > 0 {
			continue
		}
		if p.HeadID > r.LastID && retries < maxHeadRetries {
			retries++ // appended between our reads: read on
			continue
		}
		if err := r.checkHead(p); err != nil {
			return r, err
		}
		if recorded != "" && r.RecordedID == 0 {
			return r, fmt.Errorf("%w: %s", ErrHeadNotFound, recorded)
		}
		return r, nil
	}
}

// checkHead compares the head a final (empty) page reported with the last
// event read.
func (r *Result) checkHead(p *Page) error {
	last := r.last
	switch {
	case p.HeadID > r.LastID:
		return fmt.Errorf("the audit log reports event %d as its head, but lists events only up to %d", p.HeadID, r.LastID)
	case p.HeadID < r.LastID:
		return broken(last, "the log reports event %d as its head: the events after it were removed while reading", p.HeadID)
	case p.Head != r.Head:
		return broken(last, "the log reports %s as the head's hash, not %s", short(p.Head), short(r.Head))
	}
	return nil
}
