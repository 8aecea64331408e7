package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// listEvents handles GET /v1/events?deployment=&since=&after=&limit=.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var f meta.EventFilter
	if s := q.Get("deployment"); s != "" {
		d, err := a.cfg.Meta.GetDeployment(r.Context(), s)
		if errors.Is(err, meta.ErrNotFound) && !principal(r).ReadsAll() && !principal(r).Named(s) {
			return forbidden(principal(r), "read or admin")
		}
		if errors.Is(err, meta.ErrNotFound) {
			return notFound("deployment %q not found", s)
		}
		if err != nil {
			return err
		}
		if !principal(r).Reads(d.Name) {
			return forbidden(principal(r), "read, deploy:"+d.Name+" or admin")
		}
		f.DeploymentID = d.ID
	} else if !principal(r).ReadsAll() {
		return forbidden(principal(r), "read or admin (a deploy token reads ?deployment=<its deployment>)")
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return badRequest("since %q must be an RFC 3339 time", s)
		}
		f.Since = t
	}
	if s := q.Get("after"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 0 {
			return badRequest("after %q must be an event id", s)
		}
		f.AfterID = id
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be an integer from 1 to 1000")
		}
		f.Limit = n
	}
	// The head first: it is then never newer than the last event a client
	// paging with after= has seen once a page comes back empty.
	head := eventsPage{Events: []meta.Event{}}
	last, err := a.cfg.Meta.LastEvent(r.Context())
	switch {
	case errors.Is(err, meta.ErrNotFound):
	case err != nil:
		return err
	default:
		head.Head, head.HeadID = last.Hash, last.ID
	}
	evs, err := a.cfg.Meta.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	if evs != nil {
		head.Events = evs
	}
	return writeJSON(w, http.StatusOK, head)
}

// eventsPage is the answer of GET /v1/events: the matching events, each
// with its hash and prev_hash, and the head of the whole log's hash chain
// (the newest event, whatever the filter), read before the events.
type eventsPage struct {
	Events []meta.Event `json:"events"`
	Head   string       `json:"head"`    // its hash; "" when the log is empty
	HeadID int64        `json:"head_id"` // its id; 0 when the log is empty
}
