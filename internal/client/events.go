package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/internal/audit"
	"github.com/cairnhq/cairn/internal/meta"
)

// EventQuery selects events of GET /v1/events; zero values mean "any".
type EventQuery struct {
	Deployment string    // id or name
	Since      time.Time // events at or after
	After      int64     // events with a larger id
	Limit      int       // 1 to 1000; 0: the server's default (1000)
}

// EventPage is one answer of GET /v1/events: events oldest first, each with
// its hash and prev_hash, and the head of the whole log's hash chain (the
// newest event, whatever the query), which the server reads first.
type EventPage struct {
	Events []meta.Event `json:"events"`
	Head   string       `json:"head"`
	HeadID int64        `json:"head_id"`
}

// ListEvents returns one page of the audit log.
func (c *Client) ListEvents(ctx context.Context, q EventQuery) (*EventPage, error) {
	v := url.Values{}
	if q.Deployment != "" {
		v.Set("deployment", q.Deployment)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p EventPage
	if err := c.call(ctx, http.MethodGet, path, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AuditSource pages through the whole audit log for audit.Walk.
func (c *Client) AuditSource() audit.Source {
	return audit.SourceFunc(func(ctx context.Context, after int64, limit int) (*audit.Page, error) {
		p, err := c.ListEvents(ctx, EventQuery{After: after, Limit: limit})
		if err != nil {
			return nil, err
		}
		return &audit.Page{Events: p.Events, Head: p.Head, HeadID: p.HeadID}, nil
	})
}
