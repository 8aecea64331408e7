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

// createWithPolicy creates d with its retention_days (0 allowed) and
// keep_versions, in one transaction.
func (a *API) createWithPolicy(ctx context.Context, d *meta.Deployment) error {
	return a.cfg.Meta.CreateDeploymentWithPolicy(ctx, d, token.Actor(ctx))
}

// setPolicy stores the set fields of p for d and returns the stored record.
func (a *API) setPolicy(ctx context.Context, d *meta.Deployment, p meta.Policy) (*meta.Deployment, error) {
	if p.RetentionDays == nil && p.KeepVersions == nil && p.SPA == nil && p.CleanURLs == nil && p.ProxyRewrites == nil {
		return d, nil
	}
	return a.cfg.Meta.SetPolicy(ctx, d.ID, p, token.Actor(ctx))
}
