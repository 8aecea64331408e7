package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/token"
)

// GCRunner runs one garbage collection (*gc.Collector).
type GCRunner interface {
	Run(ctx context.Context, dryRun bool) (*gc.Report, error)
}

const (
	defaultRetentionDays = 30
	maxKeepVersions      = 10000
)

// runGC is POST /v1/gc {"dry_run": bool}: one collection, answered with
// its report. Another run in progress: 409 gc-running.
func (a *API) runGC(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		DryRun bool `json:"dry_run"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if a.cfg.GC == nil {
		return problem.New(http.StatusNotImplemented, "gc-unavailable", "garbage collection is not available on this server")
	}
	// A run finishes even if the client goes away: an aborted one leaves
	// claims and undeleted bytes for a later run.
	rep, err := a.cfg.GC.Run(context.WithoutCancel(r.Context()), in.DryRun)
	if errors.Is(err, gc.ErrBusy) {
		return problem.New(http.StatusConflict, "gc-running", "another garbage collection is running; try again when it ends")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// collected answers 410 for version v, whose collection the store just
// reported: v is read again so that the answer carries its collected_at.
func (a *API) collected(r *http.Request, v *meta.Version) error {
	if fresh, err := a.cfg.Meta.GetVersion(r.Context(), v.ID); err == nil {
		v = fresh
	}
	return gone(v)
}

func (a *API) now() time.Time {
	if a.cfg.Now != nil {
		return a.cfg.Now()
	}
	return time.Now()
}

func (a *API) defaultRetention() int {
	if a.cfg.DefaultRetentionDays != nil {
		return *a.cfg.DefaultRetentionDays
	}
	return defaultRetentionDays
}

func checkKeep(n int) error {
	if n < 0 || n > maxKeepVersions {
		return badRequest("keep_versions must be between 0 and %d", maxKeepVersions)
	}
	return nil
}

// errNoPolicies: the metadata backend cannot store the policy asked for.
var errNoPolicies = problem.New(http.StatusNotImplemented, "unsupported",
	"this metadata backend cannot store retention_days 0 or keep_versions")

// createWithPolicy creates d with its retention_days (0 allowed) and
// keep_versions, in one transaction when the store implements meta.Policies.
func (a *API) createWithPolicy(ctx context.Context, d *meta.Deployment) error {
	if p, ok := a.cfg.Meta.(meta.Policies); ok {
		return p.CreateDeploymentWithPolicy(ctx, d, token.Actor(ctx))
	}
	if d.RetentionDays == 0 || d.KeepVersions != 0 {
		return errNoPolicies
	}
	return a.cfg.Meta.CreateDeployment(ctx, d, token.Actor(ctx))
}

// setPolicy stores the set fields of p for d and returns the stored record.
func (a *API) setPolicy(ctx context.Context, d *meta.Deployment, p meta.Policy) (*meta.Deployment, error) {
	if p.RetentionDays == nil && p.KeepVersions == nil && p.SPA == nil && p.CleanURLs == nil {
		return d, nil
	}
	if ps, ok := a.cfg.Meta.(meta.Policies); ok {
		return ps.SetPolicy(ctx, d.ID, p, token.Actor(ctx))
	}
	if p.KeepVersions != nil || p.SPA != nil || p.CleanURLs != nil || p.RetentionDays == nil || *p.RetentionDays == 0 {
		return nil, errNoPolicies
	}
	d.RetentionDays = *p.RetentionDays
	return d, a.cfg.Meta.UpdateDeployment(ctx, d, token.Actor(ctx))
}
