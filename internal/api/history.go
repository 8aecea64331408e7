package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// The audit answers: which version and release served a hostname, or a
// deployment's own name, at a time T. They are found in the event log, so
// they hold after a collection too (version and release rows stay).
//
//	GET /v1/domains/{hostname}/history?at=RFC3339
//	GET /v1/deployments/{dep}/history?at=RFC3339
//
// A domain's last domain.add or domain.repoint event at or before T says
// whether it was pinned (to that version) or followed the active version,
// which is then the version of the deployment's last activate or rollback
// event at or before T. A domain.remove or deployment.delete event after
// those means nothing was served. A removed domain is found by its events.
// at defaults to now.

func (a *API) domainHistory(w http.ResponseWriter, r *http.Request) error {
	at, err := a.atParam(r)
	if err != nil {
		return err
	}
	dom, err := a.domainAt(r, at)
	if err != nil {
		return err
	}
	pin, act, err := a.pointers(r.Context(), dom.DeploymentID, dom.Hostname, at)
	if err != nil {
		return err
	}
	if pin == nil {
		return notFound("domain %s did not exist at %s", dom.Hostname, at.Format(time.RFC3339Nano))
	}
	h := &meta.History{At: at, Hostname: dom.Hostname, DeploymentID: dom.DeploymentID}
	decided := pin
	if pin.VersionID == "" {
		h.FollowsActive = true
		if act == nil {
			return notFound("domain %s served nothing at %s: its deployment had no active version", dom.Hostname, at.Format(time.RFC3339Nano))
		}
		if act.ID > pin.ID {
			decided = act
		}
		pin = act
	}
	return a.writeHistory(w, r, h, decided, pin.VersionID)
}

func (a *API) deploymentHistory(w http.ResponseWriter, r *http.Request) error {
	at, err := a.atParam(r)
	if err != nil {
		return err
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	_, act, err := a.pointers(r.Context(), d.ID, "", at)
	if err != nil {
		return err
	}
	if act == nil {
		return notFound("deployment %s had no active version at %s", d.Name, at.Format(time.RFC3339Nano))
	}
	return a.writeHistory(w, r, &meta.History{At: at, DeploymentID: d.ID}, act, act.VersionID)
}

// writeHistory completes h with the event that decided it and the version
// and release records.
func (a *API) writeHistory(w http.ResponseWriter, r *http.Request, h *meta.History, decided *meta.Event, versionID string) error {
	h.Since, h.EventID = decided.At, decided.ID
	v, err := a.cfg.Meta.GetVersion(r.Context(), versionID)
	if err != nil {
		return err
	}
	rel, err := a.cfg.Meta.GetRelease(r.Context(), v.ArtifactSHA256)
	if err != nil {
		return err
	}
	h.Version, h.Release = v, rel
	return writeJSON(w, http.StatusOK, h)
}

// pointers scans the deployment's events up to at and returns the last
// domain event of host (when host is set) and the last activation.
func (a *API) pointers(ctx context.Context, depID, host string, at time.Time) (pin, act *meta.Event, err error) {
	f := meta.EventFilter{DeploymentID: depID, Limit: 1000}
	for {
		evs, err := a.cfg.Meta.ListEvents(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		for i := range evs {
			e := &evs[i]
			f.AfterID = e.ID
			if e.At.After(at) {
				continue
			}
			switch e.Action {
			case meta.ActionActivate, meta.ActionRollback:
				act = e
			case meta.ActionDeploymentDelete:
				act = nil
			case meta.ActionDomainAdd, meta.ActionDomainRepoint:
				if host != "" && e.Hostname == host {
					pin = e
				}
			case meta.ActionDomainRemove:
				if host != "" && e.Hostname == host {
					pin = nil
				}
			}
		}
		if len(evs) < f.Limit {
			return pin, act, nil
		}
	}
}

// atParam parses ?at= (RFC 3339); absent means now.
func (a *API) atParam(r *http.Request) (time.Time, error) {
	s := r.URL.Query().Get("at")
	if s == "" {
		return a.now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest("at %q must be an RFC 3339 time, e.g. 2024-05-01T12:00:00Z", s)
	}
	return t.UTC(), nil
}

// domainAt is the domain of the request's hostname: its row, or, for a
// removed domain, what its last event before at names (a hostname may have
// served several deployments over time).
func (a *API) domainAt(r *http.Request, at time.Time) (*meta.Domain, error) {
	h := strings.ToLower(r.PathValue("hostname"))
	dom, err := a.cfg.Meta.GetDomain(r.Context(), h)
	if err == nil || !errors.Is(err, meta.ErrNotFound) {
		return dom, err
	}
	f := meta.EventFilter{Hostname: h, Limit: 1000}
	var last *meta.Event
	for {
		evs, lerr := a.cfg.Meta.ListEvents(r.Context(), f)
		if lerr != nil {
			return nil, lerr
		}
		for i := range evs {
			f.AfterID = evs[i].ID
			if !evs[i].At.After(at) {
				last = &evs[i]
			}
		}
		if len(evs) < f.Limit {
			break
		}
	}
	if last == nil {
		return nil, notFound("domain %q not found", h)
	}
	return &meta.Domain{Hostname: h, DeploymentID: last.DeploymentID}, nil
}
